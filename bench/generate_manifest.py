"""Generate bench/fixtures/manifest_5000.json.gz with a real ``dbt parse`` (run once, ~1 min).

A synthetic project of 5,000 models — each reads 1 to 3 earlier models, documents 4 columns
and carries 2 tests, with owners in ``config.meta`` or a group — is parsed by dbt-core in the
cached dbt virtualenv of the test harness (tests/stack/dbt_stack.py). The manifest it writes
(~35 MB) is stored gzip-compressed (~2 MB) with a fixed timestamp, so regenerating it only
changes the file when dbt's output changes::

    .venv/bin/python -m bench.generate_manifest
"""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.stack.dbt_stack import dbt_python

MODELS = 5000
ROOTS = 10
SEED = 5000
OUT = Path(__file__).resolve().parent / "fixtures" / "manifest_5000.json.gz"
GROUPS = ("finance", "marketing", "product", "ops", "growth")


def write_project(root: Path) -> None:
    rng = random.Random(SEED)
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0.0'\nconfig-version: 2\nprofile: bench\n"
        "models:\n  bench:\n    +materialized: view\n"
    )
    (root / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {root / 'bench.duckdb'}\n"
    )
    groups = "groups:\n" + "".join(
        f"  - name: {g}\n    owner:\n      name: {g.title()} team\n      email: {g}@example.com\n"
        for g in GROUPS
    )
    (root / "models" / "_groups.yml").write_text(groups)
    for batch in range(0, MODELS, 100):
        folder = root / "models" / f"layer_{batch // 100:02d}"
        folder.mkdir()
        yml = ["models:"]
        for i in range(batch, batch + 100):
            name = f"m_{i:04d}"
            if i < ROOTS:
                sql = f"select {i} as id, 1.0 as value, 'a' as category, now() as updated_at"
            else:
                parents = rng.sample(range(i), k=min(i, rng.randint(1, 3)))
                refs = "\nunion all\n".join(
                    f"select id, value, category, updated_at from {{{{ ref('m_{p:04d}') }}}}"
                    for p in parents
                )
                sql = refs
            (folder / f"{name}.sql").write_text(sql + "\n")
            yml += [
                f"  - name: {name}",
                f"    description: Model {i} of the benchmark project.",
            ]
            if i % 3 == 0:
                yml += ["    config:", "      meta:", f"        owner: '@owner{i % 40}'"]
            else:
                yml += [f"    group: {GROUPS[i % len(GROUPS)]}"]
            yml += [
                "    columns:",
                "      - name: id",
                "        description: Identifier.",
                "        data_tests: [not_null, unique]",
                "      - name: value",
                "        description: A measure.",
                "      - name: category",
                "        description: A dimension.",
                "      - name: updated_at",
                "        description: When the row changed.",
            ]
        (folder / "_models.yml").write_text("\n".join(yml) + "\n")


def main() -> None:
    python = dbt_python()
    with tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp:
        project = Path(tmp) / "bench"
        write_project(project)
        started = time.perf_counter()
        done = subprocess.run(
            [
                str(python),
                "-m",
                "dbt.cli.main",
                "parse",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--no-partial-parse",
            ],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
            env={"DO_NOT_TRACK": "1", "PATH": str(python.parent), "HOME": tmp},
        )
        seconds = time.perf_counter() - started
        manifest = project / "target" / "manifest.json"
        if done.returncode != 0 or not manifest.is_file():
            sys.exit(f"dbt parse failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with manifest.open("rb") as raw, gzip.GzipFile(OUT, "wb", mtime=0) as packed:
            shutil.copyfileobj(raw, packed)
        size = manifest.stat().st_size
    print(f"dbt parse of {MODELS} models: {seconds:.1f} s; manifest {size / 1e6:.1f} MB")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
