"""Re-record the demo environment bundled in ``integrations/demo/`` (``make record-demo``).

1. Builds the sample dbt project for real (dbt-core + dbt-duckdb) and copies its artifacts and
   DuckDB warehouse into ``integrations/demo/``.
2. Starts the real Airflow 3 harness, runs each sample DAG twice (so there is history: a
   repeated failure, a flaky task that recovers, a healthy ingest) and records every answer the
   bot's connector receives while the real playbooks run — ``status``, ``runs``, ``dag …``,
   ``triage …`` — plus a broad sweep of every run, task, try and log.

The demo replays those files offline with its clock frozen at the recording time. The
recording machine's temporary folders (the Airflow home with its DAGs and logs, the dbt project
copy) never reach the bundled files: `scrub_paths` rewrites them to the folders of the official
Airflow and dbt images, as a real deployment shows them (``python -m tests.stack.record_demo
--scrub`` applies it to the bundled data without recording again).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from bot.conversation import Conversation
from bot.messages import InboundMessage
from bot.playbooks import default_commands
from bot.ports import Sources
from bot.store import Store
from integrations.airflow import AirflowClient
from integrations.dbt import ArtifactsProject
from integrations.replay import RecordingAdapter
from tests.stack import dbt_stack
from tests.stack.airflow_stack import running_stack
from tests.stack.record_airflow import SAMPLE_DAGS, default_exercise, record

DEMO = Path(__file__).parents[2] / "integrations" / "demo"
ARTIFACTS = ("manifest.json", "run_results.json", "sources.json", "catalog.json")
RUNS_PER_DAG = 2
# What the temporary folders become in the bundled data: the homes of the official images.
AIRFLOW_HOME = "/opt/airflow"
DBT_PROJECT_DIR = "/usr/app/dbt"
# The harnesses' temporary folders (tempfile prefixes in airflow_stack.py and below), wherever
# the machine keeps temporary files.
_AIRFLOW_TMP = re.compile(r"(?:/[\w.-]+)*/pipebot-airflow-[\w.-]+")
_DBT_TMP = re.compile(r"(?:/[\w.-]+)*/pipebot-record-\w+/dbt(?:/project)?")


def scrub_paths(folder: Path, known: Mapping[str, str] | None = None) -> int:
    """Rewrite the recording machine's temporary paths in every JSON file under `folder`:
    `known` (exact path → replacement) first, then any harness folder the patterns find.
    Returns how many files changed."""
    changed = 0
    for path in sorted(folder.rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        new = text
        for old, replacement in sorted((known or {}).items(), key=lambda kv: -len(kv[0])):
            new = new.replace(old, replacement)
        new = _AIRFLOW_TMP.sub(AIRFLOW_HOME, new)
        new = _DBT_TMP.sub(
            lambda m: DBT_PROJECT_DIR if m.group(0).endswith("/project") else "/usr/app", new
        )
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += 1
    return changed


def copy_dbt(dest: Path) -> None:
    build = dbt_stack.build(dest)
    target = DEMO / "dbt"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ARTIFACTS:
        shutil.copy(build.target_dir / name, target / name)
    trim_manifest(target / "manifest.json")
    scrub_paths(target, {str(build.project_dir): DBT_PROJECT_DIR, str(dest): "/usr/app"})
    shutil.copy(build.duckdb_path, DEMO / "warehouse.duckdb")
    print(f"dbt {build.dbt_version}: artifacts and warehouse copied ({build.seconds:.0f} s)")


def trim_manifest(path: Path) -> None:
    """Drop the macros dbt and its adapter ship (500 of them) from the bundled manifest.

    pipebot reads no macros; the project's own stay, so the file is still the real manifest of
    the sample project, a sixth of the size, without dbt's internal source text in the repo.
    """
    manifest = json.loads(path.read_text(encoding="utf-8"))
    project = manifest["metadata"]["project_name"]
    manifest["macros"] = {
        uid: macro
        for uid, macro in manifest.get("macros", {}).items()
        if macro.get("package_name") == project
    }
    path.write_text(json.dumps(manifest), encoding="utf-8")


def exercise_playbooks(client: AirflowClient, recorder: RecordingAdapter) -> None:
    """The broad sweep, then the real commands exactly as the demo will run them."""
    default_exercise(client, recorder)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/record.db")
        sources = Sources(
            airflow=client, dbt=ArtifactsProject(DEMO / "dbt"), now=lambda: recorder.recorded_at
        )
        conversation = Conversation(
            store=store, commands=default_commands(incident_store=store.incidents), sources=sources
        )
        lines = ["status", "runs", *(f"dag {d}" for d in SAMPLE_DAGS)]
        lines += [f"runs {d}" for d in SAMPLE_DAGS] + [f"triage {d}" for d in SAMPLE_DAGS]
        for dag_id in SAMPLE_DAGS:
            lines += [f"triage {dag_id} {run.run_id}" for run in client.runs(dag_id, limit=25)]
        for number, line in enumerate(lines):
            reply = conversation.handle(
                InboundMessage(
                    platform="console",
                    workspace="record",
                    channel="c",
                    thread="t",
                    user="recorder",
                    text=line,
                    event_id=f"record-{number}",
                )
            )
            print(f"  {line}: {reply.title if reply else 'no reply'}")
        store.close()


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pipebot-record-") as tmp:
        copy_dbt(Path(tmp) / "dbt")
        out = DEMO / "airflow"
        shutil.rmtree(out, ignore_errors=True)
        with running_stack() as stack:
            for _ in range(RUNS_PER_DAG):
                runs = [(d, stack.trigger(d)) for d in SAMPLE_DAGS]
                for dag_id, run_id in runs:
                    stack.wait(dag_id, run_id)
            stack.wait_for_import_errors(1)
            recorder = record(stack, out, exercise_playbooks)
            scrub_paths(out, {str(stack.home): AIRFLOW_HOME})
    count = len(list(out.glob("*.json"))) - 1
    print(f"recorded {count} Airflow responses at {recorder.recorded_at.isoformat()}")
    print(f"demo environment refreshed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--scrub"]:
        print(f"{scrub_paths(DEMO)} bundled files rewritten")
        sys.exit(0)
    sys.exit(main())
