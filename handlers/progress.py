"""Showing the core's progress while an answer is being built, whatever the chat.

The core reports what it is doing through a `Progress` callback ("Checking Airflow and dbt");
a channel turns that into an edit of pipebot's "working…" message. `Throttled` wraps that edit:
at most one call per interval, the newest text wins, and nothing is sent after `close()` — so a
late progress edit can never overwrite the answer.

Progress edits are direct, best-effort calls rather than outbox rows: a lost or repeated edit
is harmless, while a retried one arriving after the answer would not be.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Throttled:
    """A `Progress` callback that forwards at most one text per `interval` seconds.

    A text arriving too early is held and sent when the interval ends (only the newest one);
    `close()` drops what is held and waits for a send in flight.
    """

    def __init__(
        self,
        send: Callable[[str], None],
        *,
        interval: float,
        errors: tuple[type[BaseException], ...] = (OSError,),
    ) -> None:
        self._send = send
        self._errors = errors
        self._interval = interval
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # keeps edits in order; close() waits on it
        self._last = float("-inf")
        self._held: str | None = None
        self._timer: threading.Timer | None = None
        self._closed = False

    def __call__(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            wait = self._last + self._interval - time.monotonic()
            if wait > 0 or self._timer is not None:
                self._held = text
                if self._timer is None:
                    self._timer = threading.Timer(max(wait, 0.0), self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = time.monotonic()
        self._forward(text)

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._closed = True
            self._held = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._sending.acquire(timeout=timeout):
            self._sending.release()

    def _flush(self) -> None:
        with self._lock:
            text, self._held, self._timer = self._held, None, None
            if self._closed or text is None:
                return
            self._last = time.monotonic()
        self._forward(text)

    def _forward(self, text: str) -> None:
        with self._sending:
            if self._closed:
                return
            try:
                self._send(text)
            except self._errors as exc:
                # Progress is decoration: a failed edit is logged and the answer still comes.
                log.info("progress update failed", extra={"error": type(exc).__name__})
