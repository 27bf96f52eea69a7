"""`HealthReport` from a local Airflow 3 API serving runs made for each case
(tests/fakes/airflow_generated.py), read through the real `AirflowClient`: the direction
against the previous window, new / still failing / recovered, usual durations and the DAGs
markedly slower, the 14 chart days, filters, a partial listing — and the JSON document and
chart made from it."""

from __future__ import annotations

import dataclasses
import json
import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.commands import Request
from bot.facts import Table
from bot.health.build import Scope, build
from bot.health.chart import draw
from bot.health.document import SCHEMA, document
from bot.health.report import HealthReport
from bot.health.selection import Filters
from bot.messages import InboundMessage, no_progress
from bot.playbooks import digest
from bot.ports import Sources
from bot.rendering import to_markdown, to_text
from integrations.airflow import AirflowClient
from integrations.demo import demo_sources
from tests.fakes.airflow_generated import DagSpec, GeneratedAirflow, Run

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DOCS = Path(__file__).parents[2] / "docs" / "digest.md"


def runs_of(*spec: tuple[str, float, str, float]) -> list[Run]:
    """``(dag_id, hours before NOW it started, state, seconds it took)`` → runs, ids by time."""
    made = sorted(spec, key=lambda s: -s[1])
    return [
        Run(
            id=index + 1,
            dag_id=dag_id,
            run_id=f"scheduled__{(NOW - timedelta(hours=ago)).isoformat()}",
            state=state,
            run_after=NOW - timedelta(hours=ago, minutes=1),
            start_date=NOW - timedelta(hours=ago),
            end_date=(NOW - timedelta(hours=ago, seconds=-took)) if state != "running" else None,
        )
        for index, (dag_id, ago, state, took) in enumerate(made)
    ]


CASES = runs_of(
    # new_failure: fine before, failing twice in the window
    ("new_failure", 60, "success", 100),
    ("new_failure", 30, "success", 100),
    ("new_failure", 10, "failed", 50),
    ("new_failure", 2, "failed", 50),
    # still_failing: failed at the end of the window before and again now
    ("still_failing", 50, "success", 100),
    ("still_failing", 26, "failed", 100),
    ("still_failing", 3, "failed", 100),
    # recovered: failed before, fine now
    ("recovered", 30, "failed", 100),
    ("recovered", 5, "success", 100),
    # flaky: failed then fine, both in the window
    ("flaky", 8, "failed", 100),
    ("flaky", 4, "success", 100),
    # slow: five runs of ~100 s before, two of 400 s now
    *[("slow", 30 + 24 * day, "success", 100 + day) for day in range(5)],
    ("slow", 6, "success", 400),
    ("slow", 1, "success", 400),
    # green, and one only running
    ("green", 7, "success", 20),
    ("running_only", 0.5, "running", 0),
    # a run older than the chart: never read
    ("green", 24 * 20, "failed", 20),
)
DAGS = [
    DagSpec(dag_id="new_failure", owners=("dana",), tags=("finance",)),
    DagSpec(dag_id="still_failing", owners=("lee",), tags=("finance",)),
    DagSpec(dag_id="recovered", owners=("lee",), tags=("crm",)),
    DagSpec(dag_id="flaky", owners=("dana",), tags=("crm",)),
    DagSpec(dag_id="slow", owners=("ops",)),
    DagSpec(dag_id="green", owners=("ops",)),
    DagSpec(dag_id="running_only", owners=("ops",)),
]


@pytest.fixture
def airflow() -> Iterator[GeneratedAirflow]:
    # Pages of 3 (a server's `maximum_page_limit` lower than ours): many pages, read in parallel.
    with GeneratedAirflow(dags=DAGS, runs=CASES, import_errors=("dags/x.py",), page_cap=3) as api:
        yield api


def sources(api: GeneratedAirflow) -> Sources:
    client = AirflowClient(api.url, username="viewer", password="viewer", api_version="v2")
    return Sources(airflow=client, now=lambda: NOW)


def report(api: GeneratedAirflow, **scope: Any) -> HealthReport:
    return build(sources(api), Scope(**scope))


def rows(made: HealthReport) -> dict[str, Any]:
    assert made.airflow is not None
    return {row.dag_id: row for row in made.airflow.dags}


def test_each_dag_against_the_window_before(airflow: GeneratedAirflow) -> None:
    made = report(airflow)
    by_id = rows(made)
    assert {d: (r.status, r.change) for d, r in by_id.items()} == {
        "new_failure": ("failing", "new"),
        "still_failing": ("failing", "still"),
        "recovered": ("recovered", "recovered"),
        "flaky": ("recovered", "recovered"),
        "slow": ("green", ""),
        "green": ("green", ""),
        "running_only": ("running", ""),
    }
    new = by_id["new_failure"]
    assert (new.failed, new.finished, new.failure_streak) == (2, 2, 2)
    assert new.last_success == NOW - timedelta(hours=30) + timedelta(seconds=100)
    assert by_id["still_failing"].failure_streak == 2  # one in the window, one before it
    assert [r.dag_id for r in made.airflow.failing] == ["new_failure", "still_failing"]
    assert by_id["running_only"].active == 1


def test_figures_and_their_direction(airflow: GeneratedAirflow) -> None:
    made = report(airflow)
    part = made.airflow
    assert part is not None and part.previous is not None
    # In the window: new_failure 2, still 1, recovered 1, flaky 2, slow 2, green 1, running 1.
    assert (part.totals.runs, part.totals.finished, part.totals.failed) == (10, 9, 4)
    assert (part.totals.active, part.totals.dags) == (1, 7)
    # The 24 hours before: new_failure, recovered and slow 30 h ago, still_failing 26 h ago.
    assert (part.previous.runs, part.previous.failed, part.previous.run_time_s) == (4, 2, 400)
    doc = document(made)
    assert doc["airflow"]["change"] == {
        "success_rate_pts": pytest.approx((5 / 9 - 2 / 4) * 100, abs=0.01),
        "failed": 2,
        "run_time_pct": pytest.approx((part.totals.run_time_s - 400) / 400 * 100, abs=0.01),
    }
    # One listing, paged: requests grow with the runs read (pages of 3), not with the DAGs.
    read = part.runs_read
    assert read == len(CASES) - 1  # the 20-day-old run is outside the chart's 14 days
    assert part.requests == -(-read // 3)
    assert airflow.requests["runs"] == part.requests


def test_usual_duration_and_markedly_slower(airflow: GeneratedAirflow) -> None:
    made = report(airflow)
    slow = rows(made)["slow"]
    assert slow.usual_duration_s == pytest.approx(102)  # median of 100 … 104
    assert slow.median_duration_s == pytest.approx(400)
    assert slow.markedly_slower and slow.slower_ratio == pytest.approx(400 / 102)
    assert made.airflow is not None
    assert [d.dag_id for d in made.airflow.slower] == ["slow"]
    assert made.airflow.slowest[0].dag_id == "slow"
    assert made.airflow.slowest[0].ratio == pytest.approx(400 / 102)


def test_fourteen_chart_days_with_the_failing_dags(airflow: GeneratedAirflow) -> None:
    made = report(airflow)
    assert made.airflow is not None
    days = made.airflow.days
    assert len(days) == 14 and days[-1].day == NOW.date()
    assert sum(d.failed for d in days) == 6  # every failed run of the 14 days
    assert dict(days[-1].failed_by_dag) == {"new_failure": 1, "still_failing": 1}


def test_filters_by_tag_and_owner(airflow: GeneratedAirflow) -> None:
    finance = report(airflow, filters=Filters(tags=("finance",)))
    assert set(rows(finance)) == {"new_failure", "still_failing"}
    dana_crm = report(airflow, filters=Filters(tags=("crm",), owners=("dana",)))
    assert set(rows(dana_crm)) == {"flaky"}


def test_a_page_that_cannot_be_read_makes_a_partial_digest_that_says_so() -> None:
    with GeneratedAirflow(dags=DAGS, runs=CASES, page_cap=3, broken_offsets=frozenset({6})) as api:
        made = report(api)
    assert made.airflow is not None and not made.airflow.complete
    (gap,) = made.unread
    assert gap.what == "DAG runs" and "1 of 7 pages of runs could not be read" in gap.reason
    assert "page broken on purpose" in gap.reason
    reply = digest.render(made)
    assert "not confirmed" not in reply.title  # something is failing anyway …
    assert "some DAG runs unread" in reply.title  # … and what is unknown is said
    assert any(b.startswith("Could not read DAG runs (Airflow)") for b in reply.sections[0].bullets)


def test_the_document_lists_failing_dags_as_objects_and_every_key_is_documented(
    airflow: GeneratedAirflow,
) -> None:
    made = report(airflow)
    doc = document(made, chart={"path": "/tmp/c.png", "width": 1200, "height": 1200})
    assert doc["schema"] == SCHEMA and doc["failing"] is True and doc["verdict"] == "failing"
    assert [d["dag_id"] for d in doc["airflow"]["failing"]] == ["new_failure", "still_failing"]
    assert doc["airflow"]["failing"][0]["change"] == "new"
    json.dumps(doc)  # JSON-native throughout
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOCS.read_text(), re.MULTILINE))
    # `failing` and `recovered` hold the same objects as `dags` (documented once, there).
    paths = {
        re.sub(r"^airflow\.(failing|recovered)\[\]", "airflow.dags[]", p) for p in key_paths(doc)
    }
    missing = sorted(paths - documented)
    assert not missing, f"keys of {SCHEMA} not in docs/digest.md: {missing}"


def key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Every key of a document as ``a.b[].c`` (mappings keyed by data, like DAG ids, stop)."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            if key not in ("failed_by_dag", "counts"):
                yield from key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from key_paths(item, f"{prefix}[]")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_png_of_the_expected_size(airflow: GeneratedAirflow, tmp_path: Path) -> None:
    made = report(airflow)
    chart = draw(made, tmp_path / "chart.png")
    assert png_size(chart.path.read_bytes()) == (1200, 1200) == (chart.width, chart.height)
    assert "new_failure, still_failing" in chart.alt


def test_the_reply_puts_the_top_lines_first_and_the_details_after(
    airflow: GeneratedAirflow, tmp_path: Path
) -> None:
    made = report(airflow)
    reply = digest.render(made, chart=draw(made, tmp_path / "c.png"))
    assert reply.title.startswith(
        "Pipeline digest, last 24 hours — needs attention: 2 failing DAGs (1 new)"
    )
    assert reply.text == (
        "9 runs finished, 56% succeeded (▲ 6 pts) · 4 failed (▲ 2 from 2) · run time 22m 00s "
        "(▲ 230%) (against the previous 24 hours)"
    )
    attention = reply.sections[0].bullets
    assert attention[0].startswith("✗ `new_failure` (new failure) — 2 of 2 runs failed")
    assert attention[1].startswith("✗ `still_failing` (still failing) — 1 of 1 runs failed")
    assert "↺ 2 recovered: `flaky`, `recovered`" in attention
    assert any(b.startswith("Slower than usual: `slow` (3.9× its usual 1m 42s)") for b in attention)
    assert reply.sections[1].image is not None
    assert [s.heading for s in reply.details] == ["Airflow", "Run time"]
    markdown = to_markdown(reply)
    assert markdown.index("<details><summary>Details</summary>") > markdown.index("Needs attention")
    assert "1 failure in a row" not in to_text(reply)  # still_failing: 2 in a row


def test_status_is_the_same_report_over_24_hours_without_history(
    airflow: GeneratedAirflow,
) -> None:
    from bot.playbooks import status

    message = InboundMessage(
        platform="cli", workspace="l", channel="c", thread="", user="u", text="status", event_id="e"
    )
    reply = status.run(
        Request(message=message, args=(), sources=sources(airflow), progress=no_progress)
    )
    assert reply.title.startswith("Needs attention: 2 failing DAGs")
    airflow_section = reply.sections[0]
    assert {f.label: f.value for f in airflow_section.fields}["Failed runs (24 h)"] == "4"
    # No history read: the streak of still_failing stops at the window's start.
    made = report(airflow, kind="status", compare=False)
    assert rows(made)["still_failing"].failure_streak == 1 and made.airflow is not None
    assert made.airflow.days == () and made.previous is None


class Catalog:
    """A warehouse that keeps last-altered times (the catalog connectors read them where the
    warehouse does: Snowflake, BigQuery, Databricks); the tables are given."""

    system = "warehouse"
    dialect = "snowflake"

    def __init__(self, tables: list[Table]) -> None:
        self._tables = tables

    def schemas(self) -> list[str]:
        return sorted({t.schema for t in self._tables})

    def tables(self, schema: str | None = None) -> list[Table]:
        return [t for t in self._tables if schema is None or t.schema == schema]

    def table(self, schema: str, name: str) -> Table:
        return next(t for t in self._tables if (t.schema, t.name) == (schema, name))


def test_warehouse_tables_dbt_builds_that_stopped_updating() -> None:
    demo = demo_sources()
    now = demo.now()

    def table(schema: str, name: str, age: timedelta | None, kind: str = "table") -> Table:
        altered = now - age if age is not None else None
        return Table(database="shop", schema=schema, name=name, kind=kind, last_altered=altered)

    catalog = Catalog(
        [
            table("marts", "fct_orders", timedelta(days=5)),  # a dbt table, stopped
            table("marts", "orders_daily", timedelta(hours=1)),  # fresh
            table("marts", "customer_ltv", None),  # the warehouse does not say
            table("raw", "raw_payments", timedelta(days=3)),  # a source, stopped
            table("staging", "stg_orders", timedelta(days=9), kind="view"),  # views have no age
            table("scratch", "old_experiment", timedelta(days=90)),  # not dbt's: not checked
        ]
    )
    sources = dataclasses.replace(demo, airflow=None, warehouse=catalog)
    made = build(sources, Scope())
    part = made.warehouse
    assert part is not None and part.reached
    assert (part.checked, part.unknown) == (4, 1)
    assert [(t.relation, t.node) for t in part.stopped] == [
        ("marts.fct_orders", "model.shop.fct_orders"),
        ("raw.raw_payments", "source.shop.raw.payments"),
    ]
    reply = digest.render(made)
    assert any(
        b.startswith("2 warehouse tables stopped updating: `marts.fct_orders`, `raw.raw_payments`")
        for b in reply.sections[0].bullets
    )
    doc = document(made)
    assert doc["warehouse"]["stopped_updating"][0]["age_s"] == 5 * 86400
    # Narrowed by a dbt selector: only the tables the selected nodes build.
    marts = build(sources, Scope(filters=Filters(select=("fct_orders",))))
    assert marts.warehouse is not None
    assert [t.relation for t in marts.warehouse.stopped] == ["marts.fct_orders"]
    assert marts.dbt is not None and marts.dbt.selected is not None


def test_a_capped_listing_is_complete_when_it_reaches_back_past_the_window(
    airflow: GeneratedAirflow,
) -> None:
    # The newest 12 runs hold the window's 10 and two before it: the window is whole, only the
    # history is cut — said, but no "unknown".
    whole = report(airflow, max_runs=12)
    assert whole.airflow is not None and whole.airflow.complete
    assert whole.airflow.runs_read == 12 and whole.airflow.totals.runs == 10
    (gap,) = whole.unread
    assert gap.what.startswith("DAG runs before ") and "only the newest 12 were read" in gap.reason
    assert "some DAG runs unread" not in digest.render(whole).title
    # The newest 5 do not even cover the window: what is missing may be failing.
    cut = report(airflow, max_runs=5)
    assert cut.airflow is not None and not cut.airflow.complete
    assert "some DAG runs unread" in digest.render(cut).title
