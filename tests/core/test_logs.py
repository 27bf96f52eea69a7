"""Logs are JSON lines off a terminal and never contain secrets."""

from __future__ import annotations

import io
import json
import logging

from bot import logs
from bot.redaction import Redactor

# Token-shaped, built from parts so no literal token sits in the repository.
LEAKY = "xox" + "b-1111111111-leaky"


def test_json_lines_with_extra_fields_and_redaction() -> None:
    stream = io.StringIO()
    logs.configure(
        level="INFO", fmt="auto", redactor=Redactor.build(["supersecret"]), stream=stream
    )
    logging.getLogger("pipebot.test").info("token is supersecret", extra={"ref": "ab12"})
    try:
        raise ValueError(LEAKY)
    except ValueError:
        logging.getLogger("pipebot.test").exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    assert lines[0]["msg"] == "token is [REDACTED]" and lines[0]["ref"] == "ab12"
    assert lines[0]["level"] == "info"
    assert "1111111111-leaky" not in stream.getvalue()
    assert "[REDACTED]" in lines[1]["exc"]


def test_human_format() -> None:
    stream = io.StringIO()
    logs.configure(level="INFO", fmt="human", redactor=Redactor.build([]), stream=stream)
    logging.getLogger("pipebot.test").warning("hello", extra={"event": "e1"})
    assert "WARNING pipebot.test: hello  [event=e1]" in stream.getvalue()
