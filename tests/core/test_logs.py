"""Logs are JSON lines off a terminal and never contain secrets."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import threading

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


# A configured secret holding what JSON (and Python's repr) must escape: a quote, a backslash
# and a control character. Built from parts: no literal secret in the repository.
NASTY = 'pw"' + "with\\back" + "\x01slash-" + "7f3a"


def _every_spelling(secret: str) -> list[str]:
    """`secret` as it could appear in a log line: raw, JSON-escaped (ASCII or not), inside a
    repr, and a repr inside JSON."""
    spellings = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        json.dumps(repr(secret)[1:-1])[1:-1],
    }
    # The distinctive core (after the quote, before the control character) in every form too.
    core = "with\\back"
    return sorted(spellings | {core, json.dumps(core)[1:-1]})


def test_a_secret_that_json_escapes_never_reaches_a_json_line() -> None:
    stream = io.StringIO()
    logs.configure(level="INFO", fmt="json", redactor=Redactor.build([NASTY]), stream=stream)
    logger = logging.getLogger("pipebot.test")
    logger.info("connecting with %s", NASTY)
    logger.warning(
        "upstream said", extra={"detail": f"sent {NASTY} back", "nested": {"k": [NASTY]}}
    )
    for error in (ValueError(f"bad password {NASTY}"), KeyError(NASTY)):
        try:
            raise error
        except (ValueError, KeyError):
            logger.exception("failed")
    out = stream.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 4
    for spelling in _every_spelling(NASTY):
        assert spelling not in out, spelling
        assert all(spelling not in json.dumps(line) for line in lines)
    assert lines[0]["msg"] == "connecting with [REDACTED]"
    assert lines[1]["detail"] == "sent [REDACTED] back"
    assert lines[1]["nested"] == {"k": ["[REDACTED]"]}
    # KeyError's text is the repr of its argument: the escaped spelling is masked too.
    assert "KeyError: '[REDACTED]'" in lines[3]["exc"]


def test_human_lines_mask_it_too() -> None:
    stream = io.StringIO()
    logs.configure(level="INFO", fmt="human", redactor=Redactor.build([NASTY]), stream=stream)
    try:
        raise KeyError(NASTY)
    except KeyError:
        logging.getLogger("pipebot.test").exception("failed with %s", NASTY)
    for spelling in _every_spelling(NASTY):
        assert spelling not in stream.getvalue(), spelling


def test_records_carry_the_job_and_conversation_they_were_logged_in() -> None:
    stream = io.StringIO()
    logs.configure(level="INFO", fmt="json", redactor=Redactor.build([]), stream=stream)
    logger = logging.getLogger("pipebot.test")
    with logs.context(job="slack:T1:cmd:42", job_kind="slack.turn"):
        with logs.context(conversation=7):
            logger.info("inside both")
            done = threading.Event()

            def in_a_thread() -> None:
                logger.info("in a thread")
                done.set()

            # A thread started in a copy of the context (as bot.fanout does) carries it too.
            context = contextvars.copy_context()
            threading.Thread(target=context.run, args=(in_a_thread,)).start()
            assert done.wait(5)
        logger.info("job only")
    logger.info("outside")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_msg = {line["msg"]: line for line in lines}
    for msg in ("inside both", "in a thread"):
        assert by_msg[msg]["job"] == "slack:T1:cmd:42"
        assert by_msg[msg]["job_kind"] == "slack.turn"
        assert by_msg[msg]["conversation"] == 7
    assert (
        by_msg["job only"]["job"] == "slack:T1:cmd:42" and "conversation" not in by_msg["job only"]
    )
    assert "job" not in by_msg["outside"] and "conversation" not in by_msg["outside"]
