"""`schema-review <run-id>` and `schema-review <base> <target>`: the schema review of a change.

Which words mean what (the single-model `schema-review <model>` keeps every other word):

- a number is a dbt Cloud run id: ``schema-review 4242`` reviews that run (a CI job's) against
  production — the latest finished run of the deploy job (``PIPEBOT_DBT_CLOUD__JOB_ID``);
- something path-like (``/``, ``./``, ``~``) is an artifacts folder: ``schema-review ./target``
  reviews it against production;
- two words are the base and the target, each a run id, a folder or ``production``:
  ``schema-review production 4242``, ``schema-review prod/target pr/target``.

The states are loaded through `bot.ports.DbtStates` (in parallel, with a time limit), compared
by `bot.review.report.compare`, and the `ChangeReview` is returned for the caller to render
(`bot.review.reply` in chat, any renderer in the shell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.agent import Agent
from bot.commands import Request
from bot.facts import DbtState, StateRef
from bot.fanout import Outcome, gather
from bot.messages import Progress, Reply, Tone, no_progress
from bot.owners import OwnerDirectory
from bot.ports import Sources
from bot.review.advice import with_advice
from bot.review.reply import to_reply
from bot.review.report import ChangeReview, StateInfo, cannot_review, compare
from bot.review.selector import SelectorError, select

USAGE = "schema-review <run-id> | schema-review <base> <target>"
# Downloading two large manifests from dbt Cloud takes a while on a slow link.
TIMEOUT_S = 120.0
PRODUCTION_WORDS = frozenset({"production", "prod"})


def state_ref(word: str, *, production: bool = True) -> StateRef | None:
    """What one word names: a run id, a folder, production (with `production`), else None."""
    text = word.strip()
    if text.isdigit():
        return StateRef(kind="run", value=text)
    if production and text.lower() in PRODUCTION_WORDS:
        return StateRef(kind="production")
    if "/" in text or "\\" in text or text.startswith((".", "~")):
        return StateRef(kind="dir", value=text)
    return None


def is_change(args: Sequence[str]) -> bool:
    """Whether `schema-review ARGS` asks for the review of a change (not of one model)."""
    if len(args) == 1:
        return state_ref(args[0], production=False) is not None
    return len(args) == 2


def refs(args: Sequence[str]) -> tuple[StateRef, StateRef] | str:
    """(base, target) for chat words, or what is wrong with them."""
    if len(args) == 1:
        target = state_ref(args[0], production=False)
        if target is None:
            return f"`{args[0]}` is neither a dbt Cloud run id nor a folder"
        return StateRef(kind="production"), target
    base, target = (state_ref(w) for w in args)
    wrong = [w for w, ref in zip(args, (base, target), strict=True) if ref is None]
    if wrong or base is None or target is None:
        return (
            f"`{wrong[0]}` is not a dbt Cloud run id, a folder (with a `/`) or `production`: "
            f"use `{USAGE}`, or `schema-review <model>` for one model"
        )
    return base, target


def assess(
    sources: Sources,
    base: StateRef,
    target: StateRef,
    *,
    selector: str = "",
    progress: Progress = no_progress,
) -> ChangeReview:
    """Load both states and review the change (a `ChangeReview` saying why when it cannot)."""
    now = sources.now()
    states = sources.dbt_states
    if states is None:
        return cannot_review("whole dbt states cannot be loaded here", select=selector, now=now)
    progress(f"dbt: loading {base} and {target}")
    out: dict[str, Outcome[DbtState]] = gather(
        {
            "base": (states.system, lambda: states.state(base)),
            "target": (states.system, lambda: states.state(target)),
        },
        timeout=TIMEOUT_S,
    )
    loaded = {side: outcome.value for side, outcome in out.items() if outcome.ok}
    base_state, target_state = loaded.get("base"), loaded.get("target")
    if base_state is None or target_state is None:
        problems = [
            f"the {side} ({ref}) could not be loaded: {out[side].system}: {out[side].error}"
            for side, ref in (("base", base), ("target", target))
            if not out[side].ok
        ]
        return cannot_review(
            "; ".join(problems),
            base=StateInfo.of(base, base_state) if base_state else None,
            target=StateInfo.of(target, target_state) if target_state else None,
            select=selector,
            now=now,
        )
    selected = None
    if selector:
        try:
            selected = select(selector, [base_state, target_state])
        except SelectorError as exc:
            return cannot_review(f"--select: {exc}", select=selector, now=now)
    progress("Comparing the two states and reading the SQL of their readers")
    review = compare(
        base_state,
        target_state,
        base_ref=base,
        target_ref=target,
        selected=selected,
        select=selector,
        now=now,
    )
    if selected is not None and not selected:
        note = f"`{selector}` selects no model, seed, snapshot or source."
        return replace(review, notes=(*review.notes, note))
    return review


def run(
    request: Request, owners: OwnerDirectory | None = None, agent: Agent | None = None
) -> Reply:
    """The chat reply to `schema-review <run-id>` / `schema-review <base> <target>` (with the
    agent's migration advice when it is configured, `bot.review.advice`)."""
    found = refs(request.args)
    if isinstance(found, str):
        return Reply(title="Which change?", tone=Tone.WARNING, text=found + ".")
    base, target = found
    review = assess(request.sources, base, target, progress=request.progress)
    reply = to_reply(review, platform=request.message.platform, owners=owners)
    if agent is not None:
        reply = with_advice(reply, review, agent=agent, request=request)
    return reply
