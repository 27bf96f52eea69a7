"""DAG ids and dbt model names for a chat's autocompletion: cached, and bounded in time.

A platform asks while a person types (Discord gives an autocomplete request 3 seconds), so a
lookup never waits longer than `budget`: it answers from the cache, refreshes a stale cache in
the background (one refresh at a time per kind), and waits for that refresh only while the
budget lasts. A connector that fails leaves the last names in place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import BotError
from bot.ports import Sources

log = logging.getLogger(__name__)

CHOICES_MAX = 25  # Discord shows at most 25 suggestions


@dataclass(frozen=True)
class _Cached:
    names: tuple[str, ...]
    at: float


class Names:
    def __init__(self, sources: Sources, *, ttl: float = 300.0, budget: float = 1.5) -> None:
        self._sources = sources
        self._ttl = ttl
        self._budget = budget
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._refreshing: dict[str, threading.Event] = {}

    def dags(self, typed: str) -> list[str]:
        airflow = self._sources.airflow
        if airflow is None:
            return []
        return _matching(self._names("dags", lambda: [d.dag_id for d in airflow.dags()]), typed)

    def models(self, typed: str) -> list[str]:
        dbt = self._sources.dbt
        if dbt is None:
            return []
        return _matching(self._names("models", lambda: [n.name for n in dbt.nodes("model")]), typed)

    def _names(self, kind: str, fetch: Callable[[], list[str]]) -> tuple[str, ...]:
        with self._lock:
            cached = self._cache.get(kind)
            if cached is not None and time.monotonic() - cached.at < self._ttl:
                return cached.names
            done = self._refreshing.get(kind)
            if done is None:
                done = threading.Event()
                self._refreshing[kind] = done
                threading.Thread(
                    target=self._refresh, args=(kind, fetch, done), daemon=True, name="names"
                ).start()
        done.wait(self._budget)
        with self._lock:
            cached = self._cache.get(kind)
        return cached.names if cached is not None else ()

    def _refresh(self, kind: str, fetch: Callable[[], list[str]], done: threading.Event) -> None:
        try:
            names = tuple(sorted(set(fetch())))
        except (BotError, OSError) as exc:
            log.info("names not refreshed", extra={"kind": kind, "error": type(exc).__name__})
        else:
            with self._lock:
                self._cache[kind] = _Cached(names, time.monotonic())
        finally:
            with self._lock:
                self._refreshing.pop(kind, None)
            done.set()


def _matching(names: tuple[str, ...], typed: str) -> list[str]:
    """Names containing `typed` (case-insensitive), those starting with it first."""
    needle = typed.strip().lower()
    starts = [n for n in names if n.lower().startswith(needle)]
    inside = [n for n in names if needle in n.lower() and not n.lower().startswith(needle)]
    return (starts + inside)[:CHOICES_MAX]
