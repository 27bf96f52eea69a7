"""Failure classification, owner mentions, and the documented triage JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.facts import LogError
from bot.failure import Category, classify
from bot.owners import OwnerDirectory, unique_owners
from bot.playbooks.triage import TriageReport
from bot.playbooks.triage.report import TaskFinding

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("exc_type", "message", "category"),
    [
        ("KeyError", "column 'amount' missing from raw.orders", Category.UPSTREAM_DATA),
        ("KeyError", "'amount'", Category.CODE_BUG),
        (
            "psycopg2.errors.UndefinedColumn",
            'column "amount" does not exist',
            Category.UPSTREAM_DATA,
        ),
        ("ConnectionError", "payments API refused the connection", Category.CONNECTION),
        (
            "OperationalError",
            "could not connect to server: Connection refused",
            Category.CONNECTION,
        ),
        ("AirflowTaskTimeout", "Timeout, PID: 123", Category.TIMEOUT),
        ("MemoryError", "", Category.OOM),
        ("RuntimeError", "Task exited with return code -9 (Negsignal.SIGKILL)", Category.OOM),
        ("PermissionError", "[Errno 13] Permission denied: '/data'", Category.PERMISSIONS),
        ("ProgrammingError", "insufficient privileges on table raw.orders", Category.PERMISSIONS),
        ("ZeroDivisionError", "division by zero", Category.CODE_BUG),
        ("SomethingOdd", "the flux capacitor broke", Category.UNKNOWN),
    ],
)
def test_classification(exc_type: str, message: str, category: Category) -> None:
    verdict = classify((LogError(exc_type=exc_type, message=message),))
    assert verdict.category is category
    assert verdict.evidence and verdict.advice


def test_classification_from_log_lines_without_exception() -> None:
    verdict = classify((), ("INFO starting", "ERROR Task exited with return code 137 (OOMKilled)"))
    assert verdict.category is Category.OOM and "OOMKilled" in verdict.evidence


def test_owner_mentions() -> None:
    directory = OwnerDirectory(slack={"dana": "U1", "data-platform": "S9"}, discord={"dana": "42"})
    assert directory.mention("@dana", "slack") == "<@U1>"
    assert directory.mention("Data-Platform", "slack") == "<!subteam^S9>"
    assert directory.mention("dana", "discord") == "<@42>"
    assert directory.mention("lee", "slack") == "@lee"
    assert directory.mention("fin@example.com", "console") == "fin@example.com"
    assert unique_owners(["airflow", "@dana", "Dana", "lee"]) == ("@dana", "@lee")


def test_every_triage_key_is_documented() -> None:
    finding = TaskFinding(
        task_id="t",
        state="failed",
        try_number=1,
        log_try=1,
        max_tries=0,
        duration_s=1.0,
        operator="",
        error_type="E",
        error_message="m",
        frames=(),
        category="code bug",
        evidence="",
        advice="",
        log_excerpt=(),
        log_omitted_chars=0,
        tries=(),
    )
    body = TriageReport(
        system="airflow", subject="d", run_id="r", run_state="failed", failed=(finding,)
    ).to_dict()
    doc = (ROOT / "docs" / "alerts.md").read_text()
    keys = set(body) | set(body["failed"][0]) | {"reply"}
    missing = sorted(k for k in keys if f"`{k}" not in doc)
    assert missing == []
