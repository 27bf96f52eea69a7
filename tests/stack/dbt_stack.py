"""Real dbt builds of the sample project (``tests/stack/dbt_project``) for integration tests.

dbt runs in its own virtualenv, created once and cached under ``.cache/venvs/dbt-1.11`` (a file
lock keeps parallel test sessions from building it twice). It pins ``dbt-core<1.12`` (1.12 needs
a download at install time that this machine cannot make) and the exact DuckDB version of the
bot's own environment, so the bot can open the warehouse file dbt wrote.

`build(dest)` copies the project to ``dest/project``, stamps the seeds' ``_loaded_at`` values
relative to now (so source freshness gives pass / warn / error whenever it runs), then runs, in
one Python process through dbt's programmatic runner (about 3x faster than four CLI calls)::

    dbt seed → dbt build → dbt source freshness → dbt docs generate

``dbt build`` exits with failures on purpose (a failing test and an erroring model). ``docs
generate`` overwrites run_results.json, so the build's copy is put back afterwards: the target
folder ends up as a dbt Cloud job would leave it — manifest, the build's run_results, sources,
catalog. A snapshot of the target folder after each step is kept in ``dest/steps/<n>`` for the
fake dbt Cloud, which serves artifacts per run step.
"""

from __future__ import annotations

import csv
import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROJECT_SOURCE = Path(__file__).resolve().parent / "dbt_project"
VENV_DIR = REPO / ".cache" / "venvs" / "dbt-1.11"
INSTALL_TIMEOUT_S = 900
BUILD_TIMEOUT_S = 600

# The seeds' _loaded_at values are written as if loaded just before this moment; the harness
# shifts them so that this moment becomes "now" (see tests/stack/dbt_project/README.md).
SEED_ANCHOR = datetime(2026, 11, 25, 6, 0, 0)

ARTIFACTS = ("manifest.json", "run_results.json", "sources.json", "catalog.json")
STEPS = (
    ("seed", ["seed"]),
    ("build", ["build"]),
    ("source freshness", ["source", "freshness"]),
    ("docs generate", ["docs", "generate"]),
)


class DbtHarnessError(RuntimeError):
    """The dbt environment or a build could not be produced (not: dbt found failures)."""


@dataclass(frozen=True, kw_only=True)
class BuildStep:
    index: int  # 1-based, in run order
    command: str  # "dbt build"
    success: bool  # dbt's own verdict (False for build and freshness here, by design)
    artifacts_dir: Path  # the target/ artifacts as they were right after this step
    seconds: float


@dataclass(frozen=True, kw_only=True)
class DbtBuild:
    target_dir: Path
    duckdb_path: Path
    project_dir: Path
    steps: tuple[BuildStep, ...] = ()
    built_at: datetime | None = None
    seconds: float = 0.0
    dbt_version: str = ""

    def step(self, command: str) -> BuildStep:
        for step in self.steps:
            if step.command == command:
                return step
        raise KeyError(command)


def requirements() -> list[str]:
    return ["dbt-core<1.12", "dbt-duckdb", f"duckdb=={importlib.metadata.version('duckdb')}"]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dbt_python() -> Path:
    """The dbt venv's interpreter, creating the venv first if needed."""
    python = VENV_DIR / "bin" / "python"
    marker = VENV_DIR / ".pipebot-ready"
    wanted = "\n".join(requirements())
    with _locked(VENV_DIR.parent / f"{VENV_DIR.name}.lock"):
        if marker.is_file() and marker.read_text() == wanted and python.exists():
            return python
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        base = Path(getattr(sys, "_base_executable", sys.executable))
        _run([str(base), "-m", "venv", str(VENV_DIR)], "create the dbt virtualenv")
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *requirements(),
            ],
            "install dbt into " + str(VENV_DIR),
        )
        marker.write_text(wanted)
    return python


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise DbtHarnessError(f"could not {what} (exit {done.returncode}):\n{tail}")


def stamp_seeds(seeds_dir: Path, now: datetime) -> None:
    """Shift every ``_loaded_at`` so that `SEED_ANCHOR` becomes `now` (naive UTC, as dbt reads)."""
    shift = now.astimezone(UTC).replace(tzinfo=None) - SEED_ANCHOR
    for path in sorted(seeds_dir.glob("*.csv")):
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or "_loaded_at" not in rows[0]:
            continue
        column = rows[0].index("_loaded_at")
        for row in rows[1:]:
            loaded = datetime.fromisoformat(row[column]) + shift
            row[column] = loaded.replace(microsecond=0).isoformat(sep=" ")
        with path.open("w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)


# Runs inside the dbt venv. One process, one dbtRunner: dbt's start-up cost is paid once.
_RUNNER = r"""
import json, shutil, sys, time
from pathlib import Path
from dbt.cli.main import dbtRunner
from dbt.version import __version__

project, steps_dir, report_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
plan = json.loads(sys.argv[4])
artifacts = json.loads(sys.argv[5])
target = project / "target"
runner = dbtRunner()
report = {"dbt_version": __version__, "steps": []}
kept_run_results = None
for index, (name, args) in enumerate(plan, start=1):
    if name == "docs generate" and (target / "run_results.json").exists():
        kept_run_results = (target / "run_results.json").read_bytes()
    started = time.perf_counter()
    outcome = runner.invoke([*args, "--project-dir", str(project), "--profiles-dir", str(project)])
    seconds = time.perf_counter() - started
    snapshot = steps_dir / str(index)
    snapshot.mkdir(parents=True)
    for artifact in artifacts:
        if (target / artifact).exists():
            shutil.copy2(target / artifact, snapshot / artifact)
    report["steps"].append({
        "index": index, "command": "dbt " + name, "success": bool(outcome.success),
        "exception": None if outcome.exception is None else repr(outcome.exception),
        "seconds": seconds, "dir": str(snapshot),
    })
if kept_run_results is not None:
    (target / "run_results.json").write_bytes(kept_run_results)
report_path.write_text(json.dumps(report))
"""


# An edit of one project file: replacements (old, new) applied in order, a whole new content,
# or None to delete the file.
Edit = list[tuple[str, str]] | str | None


def apply_edits(project_dir: Path, edits: dict[str, Edit]) -> None:
    for relative, edit in edits.items():
        path = project_dir / relative
        if edit is None:
            path.unlink()
        elif isinstance(edit, str):
            path.write_text(edit)
        else:
            text = path.read_text()
            for old, new in edit:
                if old not in text:
                    raise DbtHarnessError(f"edit no longer applies to {relative}: {old!r}")
                text = text.replace(old, new, 1)
            path.write_text(text)


def build(
    dest_dir: Path, *, edits: dict[str, Edit] | None = None, warehouse: Path | None = None
) -> DbtBuild:
    """Build the sample project into `dest_dir` (which must be empty or absent): with `edits`
    applied to the copy first, and on a copy of the DuckDB file `warehouse` (so a model the
    edits break keeps its old relation, as in a long-lived schema)."""
    started = time.perf_counter()
    python = dbt_python()
    dest_dir.mkdir(parents=True, exist_ok=True)
    project_dir = dest_dir / "project"
    shutil.copytree(
        PROJECT_SOURCE, project_dir, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb")
    )
    if edits:
        apply_edits(project_dir, edits)
    built_at = datetime.now(UTC)
    stamp_seeds(project_dir / "seeds", built_at)
    duckdb_path = dest_dir / "shop.duckdb"
    if warehouse is not None:
        shutil.copy2(warehouse, duckdb_path)
    steps_dir = dest_dir / "steps"
    report_path = dest_dir / "dbt-steps.json"
    log_path = dest_dir / "dbt-output.log"
    # The child needs PATH, HOME … of this process; only dbt's own variables are added.
    env = dict(os.environ)
    env.update(
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_PROFILES_DIR=str(project_dir),
        SHOP_DUCKDB_PATH=str(duckdb_path),
    )
    plan = json.dumps([[name, args] for name, args in STEPS])
    with log_path.open("w") as log:
        done = subprocess.run(
            [
                str(python),
                "-c",
                _RUNNER,
                str(project_dir),
                str(steps_dir),
                str(report_path),
                plan,
                json.dumps(ARTIFACTS),
            ],
            cwd=project_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    output = log_path.read_text(errors="replace")
    if done.returncode != 0 or not report_path.is_file():
        raise DbtHarnessError(f"the dbt runner crashed (exit {done.returncode}):\n{output[-4000:]}")
    report = json.loads(report_path.read_text())
    crashed = [s for s in report["steps"] if s["exception"]]
    if crashed:
        raise DbtHarnessError(f"dbt raised in {crashed[0]['command']}: {crashed[0]['exception']}")
    target_dir = project_dir / "target"
    missing = [a for a in ARTIFACTS if not (target_dir / a).is_file()]
    if missing or not duckdb_path.is_file():
        raise DbtHarnessError(
            f"dbt left no {', '.join(missing) or duckdb_path.name} in {target_dir}:\n"
            f"{output[-4000:]}"
        )
    which = json.loads((target_dir / "run_results.json").read_text()).get("args", {}).get("which")
    if which != "build":
        raise DbtHarnessError(f"run_results.json is from `dbt {which}`, expected `dbt build`")
    return DbtBuild(
        target_dir=target_dir,
        duckdb_path=duckdb_path,
        project_dir=project_dir,
        steps=tuple(
            BuildStep(
                index=s["index"],
                command=s["command"],
                success=s["success"],
                artifacts_dir=Path(s["dir"]),
                seconds=s["seconds"],
            )
            for s in report["steps"]
        ),
        built_at=built_at,
        seconds=time.perf_counter() - started,
        dbt_version=report["dbt_version"],
    )


# The drift scenario (dropped, renamed, retyped): two staging views change after the build
# and are redeployed with `dbt run -s` only, as a hurried fix would be; catalog.json still
# describes the build.
DRIFT_EDITS = {
    "models/staging/stg_customers.sql": (
        "    email,\n    country\n",
        "    country as country_code\n",
    ),
    "models/staging/stg_orders.sql": (
        "    _loaded_at as loaded_at",
        "    cast(_loaded_at as varchar) as loaded_at",
    ),
}
DRIFT_SELECT = ["stg_customers", "stg_orders"]


def drift(base: DbtBuild, dest_dir: Path) -> DbtBuild:
    """A copy of `base` where `stg_customers` lost ``email`` and renamed ``country`` to
    ``country_code`` (``dim_customers`` selects both) and ``stg_orders.loaded_at`` became
    varchar, redeployed with ``dbt run -s`` only: the warehouse and run_results.json are newer
    than catalog.json, which still shows the old columns."""
    started = time.perf_counter()
    python = dbt_python()
    dest_dir.mkdir(parents=True, exist_ok=True)
    project_dir = dest_dir / "project"
    shutil.copytree(base.project_dir, project_dir, ignore=shutil.ignore_patterns("logs"))
    duckdb_path = dest_dir / "shop.duckdb"
    shutil.copy2(base.duckdb_path, duckdb_path)
    for relative, (old, new) in DRIFT_EDITS.items():
        path = project_dir / relative
        text = path.read_text()
        if old not in text:
            raise DbtHarnessError(f"drift edit no longer applies to {relative}: {old!r}")
        path.write_text(text.replace(old, new))
    env = dict(os.environ)
    env.update(
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_PROFILES_DIR=str(project_dir),
        SHOP_DUCKDB_PATH=str(duckdb_path),
    )
    done = subprocess.run(
        [str(python.parent / "dbt"), "run", "-s", *DRIFT_SELECT, "--project-dir", str(project_dir)],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    target_dir = project_dir / "target"
    which = json.loads((target_dir / "run_results.json").read_text()).get("args", {}).get("which")
    if done.returncode != 0 or which != "run":
        raise DbtHarnessError(
            f"the drift run failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}"
        )
    return DbtBuild(
        target_dir=target_dir,
        duckdb_path=duckdb_path,
        project_dir=project_dir,
        steps=(
            BuildStep(
                index=1,
                command="dbt run -s " + " ".join(DRIFT_SELECT),
                success=True,
                artifacts_dir=target_dir,
                seconds=time.perf_counter() - started,
            ),
        ),
        built_at=datetime.now(UTC),
        seconds=time.perf_counter() - started,
        dbt_version=base.dbt_version,
    )


# A pull request's change set (issue 15, the schema review of a change), as edits of the
# sample project:
# - stg_orders: `order_date` renamed to `ordered_on` (fct_orders follows, dim_customers does
#   not), `amount` narrowed to decimal(10,2), tagged `staging`;
# - fct_orders (contract enforced, public): `status` removed (revenue_by_status selects it),
#   `order_date` now a timestamp — so orders_daily's `order_date`, which the PR does not touch,
#   becomes a timestamp too (a knock-on change);
# - customer_ltv removed; customer_contacts added (an unclassified `full_name`, a classified
#   `email`);
# - stg_payments built as a table; dim_customers owned by @kim; orders_daily's description.
CHANGE_SET: dict[str, Edit] = {
    "models/staging/stg_orders.sql": [
        ("    order_date,\n", "    order_date as ordered_on,\n"),
        ("    amount,\n", "    cast(amount as decimal(10, 2)) as amount,\n"),
    ],
    "models/staging/stg_payments.sql": [
        ("{{ config(meta=", "{{ config(materialized='table', meta="),
    ],
    "models/staging/_staging.yml": [
        (
            "    description: Orders, renamed and typed.\n",
            "    description: Orders, renamed and typed.\n    config:\n      tags: [staging]\n",
        ),
        (
            "      - name: order_date\n        description: Day the order was placed.\n",
            "      - name: ordered_on\n        description: Day the order was placed.\n",
        ),
    ],
    "models/marts/fct_orders.sql": [
        ("cast(order_date as date) as order_date", "cast(ordered_on as timestamp) as order_date"),
        ("    cast(status as varchar) as status,\n", ""),
    ],
    "models/marts/_marts.yml": [
        (
            "        description: Day the order was placed.\n        data_type: date\n",
            "        description: Day the order was placed.\n        data_type: timestamp\n",
        ),
        (
            "      - name: status\n        description: placed, shipped, completed or returned.\n"
            "        data_type: varchar\n",
            "",
        ),
        (
            "    description: Orders and revenue per day, read by the revenue dashboard.\n",
            "    description: Orders and revenue per UTC day, read by the revenue dashboard.\n",
        ),
        ("    meta:\n      owner: lee@example.com\n", '    meta:\n      owner: "@kim"\n'),
        (
            "  - name: customer_ltv\n    description: Lifetime value per customer from payments.\n"
            "    columns:\n      - name: customer_id\n        description: Primary key of the "
            "customer.\n        data_tests: [unique, not_null]\n      - name: lifetime_value\n"
            "        description: Sum of the customer's payments in EUR.\n\n",
            "",
        ),
    ],
    "models/marts/customer_ltv.sql": None,
    "models/marts/customer_contacts.sql": (
        "{{ config(meta={'owner': '@lee'}) }}\n\n"
        "select\n"
        "    customer_id,\n"
        "    email,\n"
        "    first_name || ' ' || last_name as full_name,\n"
        "    country\n"
        "from {{ ref('stg_customers') }}\n"
    ),
    "models/marts/_contacts.yml": (
        "models:\n"
        "  - name: customer_contacts\n"
        "    description: How to reach each customer, for the CRM sync.\n"
        "    columns:\n"
        "      - name: customer_id\n"
        "        data_tests: [unique, not_null]\n"
        "      - name: email\n"
        "        description: Contact e-mail.\n"
        "        meta:\n"
        "          pii: true\n"
        "      - name: full_name\n"
        "        description: First and last name.\n"
    ),
}


def changed(base: DbtBuild, dest_dir: Path) -> DbtBuild:
    """The sample project after `CHANGE_SET`, built (seed, build, freshness, docs generate) on
    a copy of `base`'s warehouse: dim_customers, which still selects `stg_orders.order_date`,
    fails and keeps its old table, as it would in a schema the PR builds into."""
    return build(dest_dir, edits=CHANGE_SET, warehouse=base.duckdb_path)


def main() -> None:
    """``python -m tests.stack.dbt_stack DEST``: build once by hand and print what came out."""
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / ".cache" / "dbt-build"
    shutil.rmtree(dest, ignore_errors=True)
    result = build(dest)
    print(f"dbt {result.dbt_version} built {result.target_dir} in {result.seconds:.1f} s")
    for step in result.steps:
        print(f"  {step.index}. {step.command}: success={step.success} ({step.seconds:.1f} s)")


if __name__ == "__main__":
    main()
