"""`pipebot demo` end to end: the bundled environment answers with real recorded facts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def demo(lines: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", *args],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )


def test_help_and_status_then_exit_zero(tmp_path: Path) -> None:
    result = demo("help\nstatus\n", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pipebot — your read-only data-engineering colleague" in result.stdout
    assert "Needs attention" in result.stdout
    assert "Failed runs (24 h)  2" in result.stdout


def test_acceptance_questions_answer_with_real_facts(tmp_path: Path) -> None:
    result = demo(
        "status\ndag orders_daily\nlineage fct_orders\nfreshness\n",
        "--format",
        "json",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    status, dag, lineage, freshness = (json.loads(line) for line in result.stdout.splitlines())
    status_text = json.dumps(status, ensure_ascii=False)
    assert "orders_daily" in status_text and "customer_ltv" in status_text
    assert "broken_dag.py" in status_text and "raw.customers" in status_text
    dag_text = json.dumps(dag, ensure_ascii=False)
    assert dag["tone"] == "error" and "transform" in dag_text and "upstream_failed" in dag_text
    assert "dana" in dag_text
    lineage_text = json.dumps(lineage, ensure_ascii=False)
    assert "stg_orders" in lineage_text and "orders_daily" in lineage_text
    assert "revenue_dashboard" in lineage_text and "@dana" in lineage_text
    # one person, one spelling: the exposure's e-mail owner is the model's @dana
    assert "dana@example.com" not in lineage_text
    fresh_text = json.dumps(freshness, ensure_ascii=False)
    assert "`raw.customers` — error" in fresh_text and "`raw.payments` — warn" in fresh_text
    assert "`raw.orders` — pass" in fresh_text


def test_triage_in_the_demo(tmp_path: Path) -> None:
    result = demo("triage orders_daily\ntriage payments_sync\n", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "orders_daily failed: transform — KeyError" in out
    assert "column 'amount' missing from raw.orders" in out
    assert "Blocked by `transform`: `notify`, `publish_dashboard`" in out
    assert "payments_sync succeeded after retries" in out
    assert "`sync_payments` — flaky" in out and "ConnectionError" in out


def test_unknown_dag_suggests(tmp_path: Path) -> None:
    result = demo("dag orders_dialy\n", tmp_path=tmp_path)
    assert "Did you mean `orders_daily`" in result.stdout


def test_bundled_manifest_keeps_only_the_projects_own_macros() -> None:
    """`make record-demo` trims dbt's built-in macros; the project's facts are all still there."""
    from integrations.demo import data_dir, demo_sources

    manifest = json.loads((data_dir() / "dbt" / "manifest.json").read_text(encoding="utf-8"))
    packages = {m["package_name"] for m in manifest["macros"].values()}
    assert packages <= {manifest["metadata"]["project_name"]}
    dbt = demo_sources().dbt
    assert dbt is not None
    assert {"fct_orders", "orders_daily", "dim_customers", "customer_ltv"} <= {
        n.name for n in dbt.nodes("model")
    }
    assert [e.name for e in dbt.lineage("fct_orders").exposures] == ["revenue_dashboard"]
