"""Papercuts the demo showed (issue 11, item 9): one owner written three ways, a temporary path
of the recording machine in the "Where" line, a button printed where there is none."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from bot.messages import Action, Reply
from bot.owners import OwnerDirectory
from bot.playbooks import dag
from bot.playbooks.triage import TriageReport, render, triage_airflow
from bot.rendering import to_dict, to_text
from handlers.console import render_rich
from integrations.demo import data_dir, demo_sources
from tests.playbooks.test_digest_and_schema_review import ask
from tests.stack.record_demo import AIRFLOW_HOME, DBT_PROJECT_DIR, scrub_paths

TEMPORARY = re.compile(r"/tmp/|pipebot-airflow-|pipebot-record-")


def orders_daily_triage() -> TriageReport:
    report = triage_airflow(demo_sources(), dag_id="orders_daily")
    assert isinstance(report, TriageReport)
    return report


def test_no_path_of_the_recording_machine_in_the_bundled_data() -> None:
    found = [
        f"{path.relative_to(data_dir())}: {match.group(0)}"
        for path in sorted(data_dir().rglob("*.json"))
        for match in [TEMPORARY.search(path.read_text(encoding="utf-8"))]
        if match
    ]
    assert found == []


def test_the_where_line_shows_where_the_dag_lives_in_a_deployment() -> None:
    text = to_text(render(orders_daily_triage(), platform="console", owners=OwnerDirectory()))
    assert "Where  `/opt/airflow/dags/orders_daily.py:41 in transform`" in text
    assert "/tmp/" not in text


def test_scrub_paths_rewrites_the_harness_folders(tmp_path: Path) -> None:
    airflow = tmp_path / "GET_api_v2_dags.json"
    airflow.write_text(
        json.dumps({"fileloc": "/var/tmp/pipebot-airflow-3.1.3-ab_c1/dags/orders_daily.py"})
    )
    dbt = tmp_path / "dbt" / "run_results.json"
    dbt.parent.mkdir()
    dbt.write_text(
        json.dumps(
            {
                "root": "/tmp/pipebot-record-x1y2/dbt/project",
                "steps": "/tmp/pipebot-record-x1y2/dbt/steps",
                "home": "/srv/run/airflow-home/dags",
            }
        )
    )
    known = {"/srv/run/airflow-home": AIRFLOW_HOME}
    assert scrub_paths(tmp_path, known) == 2
    assert json.loads(airflow.read_text()) == {"fileloc": "/opt/airflow/dags/orders_daily.py"}
    assert json.loads(dbt.read_text()) == {
        "root": DBT_PROJECT_DIR,
        "steps": "/usr/app/steps",
        "home": "/opt/airflow/dags",
    }
    assert scrub_paths(tmp_path) == 0


def test_one_person_is_one_mention_in_text_and_json() -> None:
    # The DAG says "dana", the models "@dana", the dashboard "dana@example.com".
    report = orders_daily_triage()
    assert report.owners == ("@dana", "finance-data@example.com")
    assert [e.owners for e in report.exposures] == [("@dana",)]
    reply = render(report, platform="console", owners=OwnerDirectory())
    text = to_text(reply)
    assert "Owners        @dana, finance-data@example.com\n" in text
    assert "dashboard `revenue_dashboard` — owner @dana —" in text
    assert "dana@example.com" not in text and "dana@example.com" not in json.dumps(
        report.to_dict(), default=str
    )
    assert "dana@example.com" not in json.dumps(to_dict(reply))
    dag_text = to_text(dag.run(ask(demo_sources(), "orders_daily")))
    assert "Owners    @dana\n" in dag_text


def test_a_configured_mention_finds_the_person_by_either_form() -> None:
    report = orders_daily_triage()
    by_email = OwnerDirectory(slack={"dana@example.com": "U024BE7LH"})
    reply = render(report, platform="slack", owners=by_email)
    assert reply.sections[0].fields[1].value == "<@U024BE7LH>, finance-data@example.com"


def test_text_output_prints_no_button() -> None:
    text = to_text(render(orders_daily_triage(), platform="console", owners=OwnerDirectory()))
    assert "Actions:" not in text and "Re-run triage" not in text


def test_the_console_shows_link_buttons_as_links_and_no_other_buttons() -> None:
    reply = Reply(
        title="t",
        actions=(
            Action(label="Open in Airflow", action_id="open", url="http://airflow/dags/x"),
            Action(label="Re-run triage", action_id="command", value="triage x"),
        ),
    )
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(render_rich(reply))
    assert "Open in Airflow: http://airflow/dags/x" in out.getvalue()
    assert "Re-run triage" not in out.getvalue() and "Actions" not in out.getvalue()
