"""Results are capped in rows and in bytes; a result over the byte cap is cut with a note."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from bot.settings import WarehouseSettings
from integrations.warehouse.catalog import Catalog, _row_bytes
from tests.integrations.warehouse.support import PgWarehouse


@pytest.fixture
def wide_sqlite(tmp_path: Path) -> Path:
    """40 tables of 10 columns with 30-character names: about 13 kB of catalog rows."""
    path = tmp_path / "wide.sqlite"
    with sqlite3.connect(path) as connection:
        for t in range(40):
            columns = ", ".join(f"column_{c:02d}_{'x' * 20} TEXT" for c in range(10))
            connection.execute(f"CREATE TABLE table_{t:02d} ({columns})")
    return path


def test_row_bytes_counts_text_and_arrays() -> None:
    row = {
        "schema_name": "marts",
        "row_count": 12,
        "size_bytes": None,
        "column_names": ["id", "amount"],
        "column_nullable": [False, True],
    }
    assert _row_bytes(row) == 5 + 8 + 0 + 8 + 16


def test_a_result_over_the_byte_cap_is_cut_with_a_note(
    wide_sqlite: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Catalog(f"sqlite:///{wide_sqlite}") as whole:
        assert len(whole.tables()) == 40
        assert whole.last_cut is None
    with Catalog(f"sqlite:///{wide_sqlite}", byte_cap=4000) as capped:
        with caplog.at_level(logging.WARNING, logger="integrations.warehouse.catalog"):
            tables = capped.tables()
        check = capped.check()
    assert 5 < len(tables) < 40
    assert [t.name for t in tables] == [f"table_{t:02d}" for t in range(len(tables))]
    assert capped.last_cut == 4000
    assert "relations result at" in caplog.text and "cut at 4000 bytes" in caplog.text
    assert "PIPEBOT_WAREHOUSE__BYTE_CAP" in caplog.text
    assert check.ok, check.detail
    assert check.detail.endswith("(result cut at 4,000 bytes)")


def test_the_row_cap_still_applies_under_the_byte_cap(wide_sqlite: Path) -> None:
    with Catalog(f"sqlite:///{wide_sqlite}", row_cap=7) as catalog:
        assert len(catalog.tables()) == 7
        assert catalog.last_cut is None


def test_the_byte_cap_comes_from_the_settings(pg_warehouse: PgWarehouse) -> None:
    assert WarehouseSettings().byte_cap == 32 * 1024 * 1024
    settings = WarehouseSettings(url=pg_warehouse.url, byte_cap=4096)
    with Catalog.from_settings(settings) as catalog:
        assert catalog.byte_cap == 4096


def test_postgres_results_are_cut_too(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url, byte_cap=300) as catalog:
        tables = catalog.tables(pg_warehouse.schema)
    assert 0 < len(tables) < 5
    assert catalog.last_cut == 300
