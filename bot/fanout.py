"""Gather facts from several sources at once, each with its own deadline.

Playbooks ask every source in parallel so one slow or broken connector costs its timeout, not
the sum of all of them, and a failure of one source leaves the others' answers intact.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.errors import SourceError

T = TypeVar("T")
log = logging.getLogger(__name__)

# Shared by all playbooks; connector calls are I/O bound, so threads are the right tool.
# Sized above the chat workers (32 by default) so a burst of slow playbooks never queues
# behind one another; idle threads cost next to nothing.
_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="fanout")


@dataclass(frozen=True, kw_only=True)
class Outcome(Generic[T]):
    value: T | None = None
    error: str = ""  # "" when the call succeeded
    system: str = ""
    seconds: float = 0.0
    exc: SourceError | None = None  # the connector's error, when it raised one

    @property
    def ok(self) -> bool:
        return not self.error


def gather(
    calls: Mapping[str, tuple[str, Callable[[], T]]], *, timeout: float
) -> dict[str, Outcome[T]]:
    """Run each ``name: (system, fn)`` in parallel; wait at most `timeout` seconds in total.

    A `SourceError` becomes the outcome's `error` (its reason, verbatim); a call still running
    at the deadline becomes "no answer within N s". Unexpected exceptions propagate to the
    caller's error boundary after every call has been waited for.
    """
    started = time.perf_counter()
    # Each call runs in a copy of this context: its log lines name the job and conversation.
    futures: dict[str, tuple[str, Future[T]]] = {
        name: (system, _POOL.submit(contextvars.copy_context().run, fn))
        for name, (system, fn) in calls.items()
    }
    results: dict[str, Outcome[T]] = {}
    unexpected: BaseException | None = None
    for name, (system, future) in futures.items():
        remaining = max(0.0, timeout - (time.perf_counter() - started))
        try:
            value = future.result(timeout=remaining)
            results[name] = Outcome(value=value, system=system, seconds=_since(started))
        except TimeoutError:
            future.cancel()
            results[name] = Outcome(
                error=f"no answer within {timeout:g} s", system=system, seconds=_since(started)
            )
        except SourceError as exc:
            results[name] = Outcome(
                error=exc.reason, system=exc.system, seconds=_since(started), exc=exc
            )
        except Exception as exc:  # noqa: BLE001 - re-raised below once all calls are settled
            unexpected = unexpected or exc
    if unexpected is not None:
        raise unexpected
    return results


def _since(started: float) -> float:
    return time.perf_counter() - started
