"""How fast pipebot reads a large dbt manifest (prints figures; not a test).

The fixture is the manifest of a real ``dbt parse`` of 5,000 generated models (15,000 nodes
with their tests, ~35 MB; see generate_manifest.py), kept gzip-compressed. It is unpacked to a
temporary target/ folder and measured three ways, best of several runs each:

1. ``json.load`` of the file — the baseline any reader pays at least;
2. `ArtifactsProject` load + lineage index (msgspec Structs of only the fields used) —
   target < 0.3 s;
3. a transitive downstream query from a root model — target < 10 ms — as the bare
   breadth-first walk and as the full `lineage()` answer (cold: node facts built; warm: cached).

    .venv/bin/python -m bench.bench_manifest
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from integrations.dbt.project import ArtifactsProject

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "manifest_5000.json.gz"
ROOT = "model.bench.m_0000"


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall and CPU time of `repeat` runs (GC collected before each), and the result.

    CPU time is printed too because a shared 2-core machine inflates wall time when other
    work runs; CPU time is this process's own cost.
    """
    walls: list[float] = []
    cpus: list[float] = []
    result: Any = None
    for _ in range(repeat):
        gc.collect()
        cpu = time.process_time()
        started = time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def ms(wall: float, cpu: float) -> str:
    return f"{wall * 1000:8.2f} ms wall, {cpu * 1000:8.2f} ms CPU"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp:
        target = Path(tmp) / "target"
        target.mkdir()
        manifest = target / "manifest.json"
        with gzip.open(FIXTURE, "rb") as packed, manifest.open("wb") as raw:
            shutil.copyfileobj(packed, raw)
        size_mb = manifest.stat().st_size / 1e6

        def plain() -> Any:
            with manifest.open("rb") as handle:
                return json.load(handle)

        base_wall, base_cpu, data = timed(plain, 3)
        nodes = len(data["nodes"]) + len(data["sources"])
        del data

        def ours() -> ArtifactsProject:
            project = ArtifactsProject(target)
            project.view()
            return project

        load_wall, load_cpu, project = timed(ours, 5)
        index = project.view().index
        walk_wall, walk_cpu, found = timed(lambda: index.walk(ROOT, downstream=True), 20)
        firsts = []
        for _ in range(3):
            fresh = ours()  # loaded, no node facts built yet
            firsts.append(timed(lambda fresh=fresh: fresh.lineage(ROOT), 1))
        cold_wall, cold_cpu = min(f[0] for f in firsts), min(f[1] for f in firsts)
        warm_wall, warm_cpu, lineage = timed(lambda: project.lineage(ROOT), 10)

    print(f"manifest: {size_mb:.1f} MB, {nodes} nodes + sources ({FIXTURE.name}); best of runs")
    print(f"json.load (baseline):                 {ms(base_wall, base_cpu)}")
    print(
        f"pipebot load + lineage index:         {ms(load_wall, load_cpu)}   "
        f"(json.load / ours: {base_wall / load_wall:.1f}x wall, {base_cpu / load_cpu:.1f}x CPU; "
        "target < 300 ms)"
    )
    print(
        f"downstream walk from {ROOT}: {ms(walk_wall, walk_cpu)}   "
        f"({len(found)} nodes incl. tests; target < 10 ms)"
    )
    print(
        f"lineage() answer, first call:         {ms(cold_wall, cold_cpu)}   "
        "(node facts built and cached)"
    )
    print(
        f"lineage() answer, cached:             {ms(warm_wall, warm_cpu)}   "
        f"({len(lineage.downstream)} downstream models as facts, {len(lineage.exposures)} "
        f"exposures, {len(lineage.tests)} tests)"
    )
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
