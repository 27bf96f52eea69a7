"""Run the agent evals and print a table: ``python -m tests.evals [--live | --no-live] [-k NAME]``.

Replay always runs (scripted model turns against the local fake Messages API). Live runs the
real model on the same cases when ``ANTHROPIC_API_KEY`` is set (``--live`` insists on it,
``--no-live`` skips it). The model is ``PIPEBOT_AGENT__MODEL`` or the settings default. Exit
code 1 when any case fails.
"""

from __future__ import annotations

import argparse
import os
import sys

from tests.evals.harness import EvalResult, Mode, load_cases, run_case


def _table(results: list[EvalResult]) -> str:
    header = (
        f"{'case':<28} {'mode':<6} {'result':<6} {'model':>5} {'tools':>5} "
        f"{'in':>7} {'out':>6} {'cache r':>8} {'cache w':>8} {'cost $':>8} {'secs':>5}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.case:<28} {r.mode:<6} {'pass' if r.passed else 'FAIL':<6} {r.model_calls:>5} "
            f"{len(r.tool_calls):>5} {r.tokens_in:>7,} {r.tokens_out:>6,} {r.cache_read:>8,} "
            f"{r.cache_write:>8,} {r.cost_usd:>8.4f} {r.seconds:>5.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.evals", description=__doc__)
    live = parser.add_mutually_exclusive_group()
    live.add_argument("--live", action="store_true", help="also run the real model (needs a key)")
    live.add_argument("--no-live", action="store_true", help="replay only, even with a key")
    parser.add_argument("-k", dest="only", default="", help="run cases whose name contains this")
    args = parser.parse_args(argv)

    key = os.environ.get("PIPEBOT_AGENT__API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
    if args.live and not key:
        print("--live needs ANTHROPIC_API_KEY (or PIPEBOT_AGENT__API_KEY)", file=sys.stderr)
        return 2
    modes: list[Mode] = ["replay"]
    if key and not args.no_live:
        modes.append("live")
    model = os.environ.get("PIPEBOT_AGENT__MODEL")
    cases = [c for c in load_cases() if args.only in c.name]
    results = [run_case(c, mode=m, api_key=key, model=model) for m in modes for c in cases]

    print(_table(results))
    print("\nReplay: scripted model turns against the local fake API (token counts are the fake's")
    print(
        "estimates, 4 characters per token). Live: the real model; tokens as reported by the API."
    )
    print("in = uncached input tokens; cache r/w = input tokens read from / written to the cache.")
    if "live" not in modes:
        print("Live runs skipped: set ANTHROPIC_API_KEY to run the real model too.")
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"\n{r.case} ({r.mode}) failed:")
        for problem in r.problems:
            print(f"  - {problem}")
        print(f"  tools called: {', '.join(r.tool_calls) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
