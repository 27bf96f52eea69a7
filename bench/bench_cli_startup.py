"""How long does the `pipebot` command take to start?

Runs ``pipebot --version`` and ``pipebot --help`` against the floor every command pays — the
interpreter importing sqlalchemy, pydantic-settings and click — in the same run, median of
`--runs` each, bytecode present. Target: each at most 1.5× the floor. Also lists the heavy SDKs
(anthropic, slack_bolt, discord, duckdb, mcp, matplotlib) ``--version`` imports: none.

    .venv/bin/python bench/bench_cli_startup.py [--runs 11]

Not a test: it prints figures (``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPEBOT = [sys.executable, "-m", "bot"]
FLOOR = [sys.executable, "-c", "import sqlalchemy, pydantic_settings, click"]
HEAVY = ("anthropic", "slack_bolt", "discord", "duckdb", "mcp", "matplotlib")
TARGET = 1.5


def seconds(command: list[str], runs: int) -> float:
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)  # warm the caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    floor = seconds(FLOOR, args.runs)
    print(f"floor (import sqlalchemy, pydantic_settings, click): {floor * 1000:.0f} ms")
    ok = True
    for flag in ("--version", "--help"):
        took = seconds([*PIPEBOT, flag], args.runs)
        ratio = took / floor
        ok = ok and ratio <= TARGET
        print(f"pipebot {flag}: {took * 1000:.0f} ms = {ratio:.2f}× the floor (target ≤ {TARGET}×)")
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", "--version"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stderr
    loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in trace.splitlines()}
    heavy = sorted(set(HEAVY) & loaded)
    print(f"heavy SDKs imported by --version: {', '.join(heavy) or 'none'}")
    ok = ok and not heavy
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
