"""How fast pipebot reviews a change between two large dbt states (prints figures; not a test).

The base is the manifest of a real ``dbt parse`` of 5,000 generated models (bench/fixtures,
see generate_manifest.py) with a catalog.json written for it (4 columns per model). The target
is the same project after 50 changes, spread over the graph with a fixed seed:

- 10 models lose ``category`` (their children still select it),
- 10 rename ``value`` to ``amount`` (``value as amount`` in the SQL),
- 10 narrow ``value`` from DOUBLE to FLOAT, 10 widen ``id`` from INTEGER to BIGINT,
- 5 leaf models removed, 5 models added.

Every model of the project passes every column on (``union all`` of its parents), so a changed
column reaches far downstream: the worst case for column-level impact, which parses the SQL of
the readers of each changed column, hop by hop, up to `bot.review.impact`'s caps.

Measured, in a process of its own: both states loaded from their folders (manifest +
catalog), the diff, the impact and classification of every change — target < 5 s, best of 3;
then the same once more under tracemalloc for the peak of Python memory, and the process's peak
RSS::

    .venv/bin/python -m bench.bench_schema_diff
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bot.facts import StateRef
from bot.review.impact import MAX_DEPTH, MAX_READERS
from bot.review.report import ChangeReview, compare
from integrations.dbt.state import StateLoader

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "manifest_5000.json.gz"
SEED = 15
TYPES = {"id": "INTEGER", "value": "DOUBLE", "category": "VARCHAR", "updated_at": "TIMESTAMP"}
TARGET_S = 5.0


def catalog_for(manifest: dict[str, Any], changes: dict[str, dict[str, str]]) -> dict[str, Any]:
    """catalog.json for every model: the 4 columns, with a model's changed columns applied
    (`changes[uid]`: column → new type, or → "" when removed, or "rename:new")."""
    nodes = {}
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] != "model":
            continue
        columns: dict[str, dict[str, Any]] = {}
        for original, original_type in TYPES.items():
            change = changes.get(uid, {}).get(original)
            if change == "":
                continue
            renamed = change.startswith("rename:") if change else False
            name = change.removeprefix("rename:") if change and renamed else original
            kind = change if change and not renamed else original_type
            columns[name] = {"type": kind, "index": len(columns) + 1, "name": name}
        nodes[uid] = {
            "metadata": {"type": "VIEW", "schema": "main", "name": node["name"]},
            "columns": columns,
            "stats": {},
            "unique_id": uid,
        }
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json",
            "generated_at": manifest["metadata"].get("generated_at"),
        },
        "nodes": nodes,
        "sources": {},
        "errors": None,
    }


def change_set(manifest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, str]], int]:
    """The target manifest (a modified copy), the catalog changes, and how many changes."""
    rng = random.Random(SEED)
    nodes = manifest["nodes"]
    models = sorted(u for u, n in nodes.items() if n["resource_type"] == "model")
    children: dict[str, int] = {}
    for node in nodes.values():
        if node["resource_type"] != "model":
            continue  # a leaf has tests, but no model reads it
        for parent in node["depends_on"]["nodes"]:
            children[parent] = children.get(parent, 0) + 1
    leaves = [u for u in models if u not in children]
    inner = [u for u in models[10:] if u in children]
    picked = rng.sample(inner, 40)
    target = json.loads(json.dumps(manifest))
    tnodes = target["nodes"]
    catalog: dict[str, dict[str, str]] = {}
    count = 0

    def edit(uid: str, old: str, new: str) -> None:
        node = tnodes[uid]
        node["raw_code"] = node["raw_code"].replace(old, new)
        node["checksum"] = {"name": "sha256", "checksum": f"changed-{uid}"}

    for uid in picked[:10]:
        edit(uid, ", category,", ",")
        tnodes[uid]["columns"].pop("category", None)
        catalog[uid] = {"category": ""}
    for uid in picked[10:20]:
        edit(uid, "select id, value,", "select id, value as amount,")
        columns = tnodes[uid]["columns"]
        column = columns.pop("value")
        column["name"] = "amount"
        columns["amount"] = column
        catalog[uid] = {"value": "rename:amount"}
    for uid in picked[20:30]:
        edit(uid, "select id, value,", "select id, cast(value as float) as value,")
        catalog[uid] = {"value": "FLOAT"}
    for uid in picked[30:40]:
        edit(uid, "select id,", "select cast(id as bigint) as id,")
        catalog[uid] = {"id": "BIGINT"}
    count += 40
    for uid in rng.sample(leaves, 5):
        del tnodes[uid]
        for test_id in [t for t, n in tnodes.items() if uid in n["depends_on"]["nodes"]]:
            del tnodes[test_id]
        count += 1
    template = nodes[models[-1]]
    for n in range(5):
        name = f"m_new_{n}"
        uid = f"model.bench.{name}"
        parent = rng.choice(models[:100])
        node = json.loads(json.dumps(template))
        node.update(
            name=name,
            unique_id=uid,
            alias=name,
            relation_name=f'"bench"."main"."{name}"',
            raw_code="select id, value, category, updated_at from "
            f"{{{{ ref('{nodes[parent]['name']}') }}}}\n",
            depends_on={"macros": [], "nodes": [parent]},
            checksum={"name": "sha256", "checksum": f"new-{n}"},
        )
        tnodes[uid] = node
        count += 1
    for key in ("parent_map", "child_map"):
        target[key] = None  # rebuilt from depends_on by every reader
    return target, catalog, count


def review(base: Path, target: Path) -> tuple[ChangeReview, float]:
    """The measured work: both states loaded from their folders, then compared."""
    loader = StateLoader()
    started = time.perf_counter()
    old = loader.folder(base)
    new = loader.folder(target)
    loaded = time.perf_counter() - started
    result = compare(
        old,
        new,
        base_ref=StateRef(kind="dir", value=str(base)),
        target_ref=StateRef(kind="dir", value=str(target)),
    )
    return result, loaded


def measure(base: Path, target: Path) -> dict[str, Any]:
    """Best of 3 (wall and CPU), then once under tracemalloc; run in a process of its own so
    that its peak RSS is the review's, not the fixture generation's."""
    runs = []
    for _ in range(3):
        gc.collect()
        cpu = time.process_time()
        started = time.perf_counter()
        result, loaded = review(base, target)
        runs.append((time.perf_counter() - started, time.process_time() - cpu, loaded, result))
    total, cpu, loaded, result = min(runs, key=lambda r: r[0])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    review(base, target)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    impacts = [c.impact for c in result.changes if c.impact]
    return {
        "total": total,
        "cpu": cpu,
        "loaded": loaded,
        "peak_mb": peak / 1e6,
        "rss_mb": rss_mb,
        "changes": len(result.changes),
        "breaking": len(result.breaking),
        "partial": len(result.partial),
        "non_breaking": len(result.non_breaking),
        "verdict": str(result.verdict),
        "parsed": result.sql_parsed,
        "readers": sum(len(i.readers) for i in impacts),
        "traced": len(impacts),
        "capped": sum(1 for i in impacts if i.unknown),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(Path(sys.argv[2]), Path(sys.argv[3]))))
        return
    with tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp:
        base, target = Path(tmp) / "base", Path(tmp) / "target"
        base.mkdir()
        target.mkdir()
        with gzip.open(FIXTURE, "rb") as packed:
            manifest = json.load(packed)
        changed, catalog_changes, count = change_set(manifest)
        (base / "manifest.json").write_text(json.dumps(manifest))
        (base / "catalog.json").write_text(json.dumps(catalog_for(manifest, {})))
        (target / "manifest.json").write_text(json.dumps(changed))
        (target / "catalog.json").write_text(json.dumps(catalog_for(changed, catalog_changes)))
        size_mb = (base / "manifest.json").stat().st_size / 1e6
        models = sum(1 for n in manifest["nodes"].values() if n["resource_type"] == "model")
        del manifest, changed
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(base), str(target)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        figures = json.loads(done.stdout)
    total = figures["total"]
    print(
        f"states: {models} models per manifest ({size_mb:.1f} MB) + catalog.json; "
        f"{count} changes made; best of 3"
    )
    print(
        f"review: {total:.2f} s wall ({figures['cpu']:.2f} s CPU): both states loaded in "
        f"{figures['loaded']:.2f} s, diff + impact {total - figures['loaded']:.2f} s — "
        f"target < {TARGET_S:.0f} s: " + ("met" if total < TARGET_S else "MISSED")
    )
    print(
        f"found {figures['changes']} changes: {figures['breaking']} breaking, "
        f"{figures['partial']} partial-breaking, {figures['non_breaking']} non-breaking; "
        f"verdict {figures['verdict']}"
    )
    print(
        f"column-level impact: {figures['parsed']} model queries parsed, {figures['readers']} "
        f"readers over {figures['traced']} traced changes ({figures['capped']} stopped at "
        f"{MAX_READERS} readers or {MAX_DEPTH} hops)"
    )
    print(
        f"peak memory: {figures['peak_mb']:.0f} MB traced by tracemalloc, "
        f"{figures['rss_mb']:.0f} MB peak RSS of the reviewing process"
    )
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
