"""Logging set-up: human-readable lines on a terminal, JSON lines elsewhere, secrets redacted.

**Redaction comes before encoding.** Every text a record carries — the message, the exception
and its traceback, each ``extra=`` value — passes the `Redactor` before the line is built. A
JSON encoder escapes ``"``, ``\\`` and control characters, so a secret holding one of them
would no longer match once encoded; redacting the finished line let such secrets through.

**Context.** A record logged while a job runs carries ``job`` (its key) and ``job_kind``; one
logged while a conversation is answered carries ``conversation`` (the thread's id in the
store), whichever thread or library logs it::

    with logs.context(job=key, job_kind=kind):
        ...  # every record logged here names the job

Threads started for the work (`bot.fanout`, the agent's tool calls) run in a copy of the
context, so their records carry it too.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from bot.redaction import Redactor

# Attributes every LogRecord has; anything else was passed with `extra=` and is shown.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_CONTEXT: ContextVar[Mapping[str, str | int]] = ContextVar(
    "pipebot_log_context", default=MappingProxyType({})
)


@contextmanager
def context(**fields: str | int | None) -> Iterator[None]:
    """Add `fields` to every record logged inside the block (None values are left out)."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context, then the record's ``extra=`` values (which win on a clash)."""
    return {
        **_CONTEXT.get(),
        **{k: v for k, v in vars(record).items() if k not in _STANDARD},
    }


class _JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self._redact(record.getMessage()),
        }
        body.update({k: self._clean(v) for k, v in _fields(record).items()})
        if record.exc_info:
            body["exc"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(body, ensure_ascii=False)

    def _clean(self, value: Any) -> Any:
        """A value as JSON-ready data whose every text is redacted."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {self._redact(str(k)): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(v) for v in value]
        return self._redact(str(value))


class _HumanFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{time} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line += f"  [{extra}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        # Plain text, nothing escaped: redacting the finished line sees every secret as is.
        return self._redact(line)


def configure(*, level: str, fmt: str, redactor: Redactor, stream: TextIO | None = None) -> None:
    """Install pipebot's root handler. `fmt` is "auto", "human" or "json"."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(_JsonFormatter(redactor) if use_json else _HumanFormatter(redactor))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries: their INFO lines are noise in an operator's log.
    for name in ("httpx", "httpx2", "urllib3", "alembic", "slack_bolt", "discord", "apscheduler"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
