"""Fixtures of the drift tests: a warehouse schema of our own on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from tests.drift.support import PgSchema, pg_schema


@pytest.fixture
def warehouse_schema(pg_engine: Engine) -> Iterator[PgSchema]:
    with pg_schema(pg_engine) as schema:
        yield schema
