"""Logging set-up: human-readable lines on a terminal, JSON lines elsewhere, secrets redacted.

Every record passes the `Redactor` after formatting, so a secret in a message, an argument or
a traceback never reaches the log sink.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.redaction import Redactor

# Attributes every LogRecord has; anything else was passed with `extra=` and is shown.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        line = f"{time} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line += f"  [{extra}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Redacting(logging.Formatter):
    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self._inner = inner
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor(self._inner.format(record))


def configure(*, level: str, fmt: str, redactor: Redactor, stream: TextIO | None = None) -> None:
    """Install pipebot's root handler. `fmt` is "auto", "human" or "json"."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(_Redacting(_JsonFormatter() if use_json else _HumanFormatter(), redactor))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries: their INFO lines are noise in an operator's log.
    for name in ("httpx", "httpx2", "urllib3", "alembic", "slack_bolt", "discord", "apscheduler"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
