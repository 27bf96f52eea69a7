"""How many input tokens a triage question costs, and how much of it the prompt cache serves.

Runs a two-question thread through the real agent (real SDK, real store, the conversation's
thread memory) against the local fake Messages API, with realistic toolsets: the real Airflow,
dbt and warehouse tool definitions (16 tools), answering from the evals' recorded outputs. The
model's turns are scripted, so the figures are deterministic.

Token counts are the fake server's estimates (one token per four characters of each block's
canonical JSON; no count_tokens call): good for comparing prompt layouts, not for billing.
The fake caches like the API: each cache_control breakpoint writes the prefix before it (when
at least 1,024 tokens long); a later request reads the longest cached prefix.

    python bench/bench_agent_tokens.py
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.agent import build_agent
from bot.agent.pricing import price_of
from bot.conversation import Conversation
from bot.playbooks import default_commands
from bot.ports import Sources
from bot.redaction import Redactor
from bot.store import Store
from tests.agent.support import NOW, inbound, settings
from tests.evals.harness import CASES, CallLog, load_case, toolsets_for
from tests.fakes.anthropic_api import FakeAnthropic, message, text, tool_use

MODEL = "claude-sonnet-5-5"
FIRST = "Why did orders_daily fail last night?"
SECOND = "Which reports and dashboards does that affect?"


def _scenario() -> tuple[Sources, list[dict[str, object]], list[dict[str, object]], CallLog]:
    failed = load_case(CASES / "failed_task_clear_error.toml")
    schema = load_case(CASES / "schema_change_broke_model.toml")
    case = dataclasses.replace(
        failed,
        systems=("Airflow", "dbt", "warehouse"),
        recordings=failed.recordings + schema.recordings,
    )
    log = CallLog()
    sources = Sources(toolsets=tuple(toolsets_for(case, log)), now=lambda: NOW)
    first = []
    for turn in failed.turns:
        blocks = [text(turn["text"])] if turn.get("text") else []
        blocks += [tool_use(c["tool"], c.get("input", {})) for c in turn.get("calls", ())]
        first.append(message(*blocks))
    second = [
        message(tool_use("dbt_lineage", {"name": "fct_orders", "direction": "downstream"})),
        message(
            text(
                "dbt_lineage shows `rpt_revenue_daily` and the `revenue_dashboard` exposure "
                "downstream of `fct_orders`; both stay stale until `transform` is fixed."
            )
        ),
    ]
    return sources, first, second, log


def main() -> int:
    sources, first, second, _ = _scenario()
    price = price_of(MODEL)
    with FakeAnthropic() as api, tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        agent = build_agent(settings(api.url, model=MODEL), store, Redactor())
        conversation = Conversation(
            store=store, commands=default_commands(), sources=sources, agent=agent
        )
        api.script(*first)
        conversation.handle(inbound(FIRST, thread="bench", event_id="q1"))
        split = len(api.messages_requests)
        api.script(*second)
        conversation.handle(inbound(SECOND, thread="bench", event_id="q2"))
        api.assert_clean()
        store.close()
        requests = api.messages_requests

    static = FakeAnthropic.static_prefix_tokens(requests[0].body or {})
    tools = len((requests[0].body or {}).get("tools", []))
    print("pipebot agent tokens — two-question triage thread, fake Messages API")
    print(f"model {MODEL}; {tools} tools; static prefix (system + tools) ≈ {static:,} tokens")
    print("token counts: the fake server's estimate, 1 token ≈ 4 characters of canonical JSON")
    print()
    header = (
        f"{'question':<9} {'step':>4} {'input total':>11} {'uncached':>9} {'cache read':>10} "
        f"{'cache write':>11} {'static from cache':>17}"
    )
    print(header)
    print("-" * len(header))
    totals = {1: 0, 2: 0}
    cost_cached = {1: 0.0, 2: 0.0}
    cost_plain = {1: 0.0, 2: 0.0}
    for position, request in enumerate(requests):
        question = 1 if position < split else 2
        step = position + 1 if question == 1 else position - split + 1
        usage = (request.response or {})["usage"]
        read = usage["cache_read_input_tokens"]
        write = usage["cache_creation_input_tokens"]
        total = usage["input_tokens"] + read + write
        totals[question] += total
        cost_cached[question] += (
            usage["input_tokens"] * price.input
            + read * price.cache_read
            + write * price.cache_write
        ) / 1e6
        cost_plain[question] += total * price.input / 1e6
        share = min(read, static) / static
        print(
            f"{question:<9} {step:>4} {total:>11,} {usage['input_tokens']:>9,} {read:>10,} "
            f"{write:>11,} {share:>16.0%}"
        )
    print()
    for question, label in ((1, FIRST), (2, SECOND)):
        print(
            f"question {question} ({label!r}): {totals[question]:,} input tokens sent; input "
            f"cost ${cost_cached[question]:.4f} with caching vs ${cost_plain[question]:.4f} without"
        )
    first_of_second = (requests[split].response or {})["usage"]
    share = min(first_of_second["cache_read_input_tokens"], static) / static
    verdict = "meets" if share >= 0.8 else "MISSES"
    print(
        f"second question, first request: {share:.0%} of the static prefix served from cache "
        f"({verdict} the 80 % target)"
    )
    return 0 if share >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
