"""Shared fixtures: the bot's store on SQLite and on the real PostgreSQL of this machine.

PostgreSQL is never skipped: an unreachable server fails the run with a message saying how to
start it (``make test`` starts it when it can).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bot.store import Store

# Session fixtures of the real stacks (Airflow 3, dbt builds) live with their harnesses.
pytest_plugins = ["tests.stack.airflow_fixtures", "tests.stack.dbt_fixtures"]

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_backend_runs: dict[str, int] = {"sqlite": 0, "postgresql": 0}
_pg_version: list[str] = []


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as connection:
            _pg_version.append(str(connection.scalar(text("show server_version"))))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at 127.0.0.1:5432 (user postgres, database test) is unreachable: "
            f"{exc.__class__.__name__}. Start it with `make services` and re-run.",
            pytrace=False,
        )
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_engine: Engine) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"pipebot_test_{uuid.uuid4().hex[:10]}"
    with pg_engine.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with pg_engine.begin() as connection:
        connection.execute(text(f'drop schema "{schema}" cascade'))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/pipebot.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    opened = Store.open(store_url)
    _backend_runs[opened.backend] += 1
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: object) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path}/pipebot.db")
    yield opened
    opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if any(_backend_runs.values()):
        version = f" {_pg_version[0]}" if _pg_version else ""
        terminalreporter.write_line(
            f"store backends exercised: SQLite in {_backend_runs['sqlite']} tests, "
            f"PostgreSQL{version} at 127.0.0.1:5432 in {_backend_runs['postgresql']} tests"
        )
