"""`pipebot costs [window]` as a process, against the BigQuery fake: exit 1 on a spend jump or
an unreadable history, 0 otherwise, 2 on a bad window or a warehouse without usage views."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.bigquery_api import FakeBigQuery
from tests.shell import pipebot

TIB = 1024**4


@pytest.fixture
def bq() -> Iterator[FakeBigQuery]:
    # The process reads the real clock: the jobs are placed around it.
    now = datetime.now(UTC)
    with FakeBigQuery("pipebot-test") as fake:
        fake.add_job("bquxjob_before", created=now - timedelta(hours=30), bytes_billed=TIB // 2)
        fake.add_job(
            "bquxjob_backfill",
            created=now - timedelta(hours=5),
            seconds=3600,
            bytes_billed=2 * TIB,
            labels={"dbt_model": "fct_orders"},
            tables=["raw.orders"],
        )
        yield fake


def env(bq: FakeBigQuery) -> dict[str, str]:
    return {"PIPEBOT_WAREHOUSE__URL": f"bigquery://pipebot-test?api_endpoint={bq.url}"}


def test_a_jump_exits_1_and_names_the_query(tmp_path: Path, bq: FakeBigQuery) -> None:
    done = pipebot(["costs"], tmp_path, **env(bq))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(
        "✗ Warehouse spend, last 24 hours: 2.00 TiB billed (≈ USD 12.50) — up 300% on the "
        "previous 24 hours"
    ), done.stdout
    assert "`bquxjob_backfill` 1h 00m, 2.00 TiB billed (≈ USD 12.50)" in done.stdout
    assert "tag `dbt_model=fct_orders`, read pipebot-test.raw.orders" in done.stdout
    assert done.stderr == ""


def test_a_week_as_json(tmp_path: Path, bq: FakeBigQuery) -> None:
    done = pipebot(["costs", "7d", "--format", "json"], tmp_path, **env(bq))
    # All of it new (nothing billed the week before): no rise to measure, so no finding.
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["title"].startswith("Warehouse spend, last 7 days: 2.50 TiB billed")
    assert [s["heading"] for s in body["sections"]][:2] == ["By warehouse", "By day (UTC)"]


def test_usage_errors_exit_2_with_one_line(tmp_path: Path, bq: FakeBigQuery) -> None:
    bad = pipebot(["costs", "yesterday"], tmp_path, **env(bq))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "pipebot: 'yesterday' is not a window: use e.g. 24h, 7d or 2w (up to 31 days)"
    ]
    none = pipebot(["costs"], tmp_path)
    assert none.returncode == 2
    assert none.stderr.strip() == (
        "pipebot: warehouse is not configured: set PIPEBOT_WAREHOUSE__URL"
    )
    sqlite = tmp_path / "w.sqlite"
    sqlite.touch()
    no_views = pipebot(["costs"], tmp_path, PIPEBOT_WAREHOUSE__URL=f"sqlite:///{sqlite}")
    assert no_views.returncode == 2
    assert no_views.stderr.strip().startswith(
        "pipebot: the warehouse's spend and query history are not read: pipebot reads them on "
        "Snowflake, BigQuery, Redshift and Databricks (this one is sqlite)"
    )
    off = pipebot(["costs"], tmp_path, **env(bq), PIPEBOT_WAREHOUSE__USAGE="false")
    assert off.returncode == 2 and "PIPEBOT_WAREHOUSE__USAGE" in off.stderr


def test_a_missing_grant_exits_1_and_names_it(tmp_path: Path, bq: FakeBigQuery) -> None:
    bq.deny_jobs()
    done = pipebot(["costs"], tmp_path, **env(bq))
    assert done.returncode == 1
    assert "Could not read the warehouse's spend and query history" in done.stdout
    assert "roles/bigquery.resourceViewer" in done.stdout
