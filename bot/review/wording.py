"""How a change and its readers are said, shared by every renderer of a `ChangeReview`
(the chat reply, the pull-request comment), so they tell the same story."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot import phrases
from bot.review.change import Change, Classification, Impact, Kind, Reader
from bot.review.report import ChangeReview, StateInfo, Verdict

MARK = {
    Classification.BREAKING: "🔴",
    Classification.PARTIAL: "🟠",
    Classification.NON_BREAKING: "🟢",
}
VERDICT_WORDS = {
    Verdict.SAFE: "safe",
    Verdict.BREAKING: "breaking",
    Verdict.CANNOT_REVIEW: "cannot review",
}
_ARROW = "→"


def code(text: str) -> str:
    """`text` as inline code, safe for backticks inside it."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def what(change: Change) -> str:
    """The change in a few words: "`status` removed (VARCHAR)"."""
    kind, col = change.kind, change.column
    before, after = change.before, change.after
    on = f" of {code(col)}" if col else ""
    if kind is Kind.NODE_ADDED:
        return f"new {change.resource_type}" + (f" ({after})" if after else "")
    if kind is Kind.NODE_REMOVED:
        return f"{change.resource_type} removed"
    if kind is Kind.COLUMN_ADDED:
        return f"{code(col)} added" + (f" ({after})" if after else "")
    if kind is Kind.COLUMN_REMOVED:
        return f"{code(col)} removed" + (f" ({before})" if before else "")
    if kind is Kind.COLUMN_RENAMED:
        return f"{code(col)} renamed to {code(change.new_column)}"
    if kind is Kind.TYPE_CHANGED:
        text = f"{code(col)} {change.shift or 'changed'}: {code(before)} {_ARROW} {code(after)}"
        if change.knock_on:
            cause = ", ".join(code(b) for b in change.because) or "upstream"
            text += f" (knock-on from {cause})"
        return text
    if kind is Kind.NULLABILITY_CHANGED:
        return f"{code(col)} {before} {_ARROW} {after}"
    if kind is Kind.CONSTRAINT_ADDED:
        return f"constraint {code(after)} added{on}"
    if kind is Kind.CONSTRAINT_REMOVED:
        return f"constraint {code(before)} removed{on}"
    if kind is Kind.CONTRACT_CHANGED:
        return f"contract {before} {_ARROW} {after}"
    if kind is Kind.ACCESS_CHANGED:
        return f"access {before} {_ARROW} {after}"
    if kind is Kind.RELATION_CHANGED:
        return f"relation {code(before)} {_ARROW} {code(after)}"
    if kind is Kind.MATERIALIZATION_CHANGED:
        return f"materialized as {before} {_ARROW} {after}"
    if kind is Kind.DESCRIPTION_CHANGED:
        return f"description{on} changed"
    if kind is Kind.OWNER_CHANGED:
        return f"owner {before or '–'} {_ARROW} {after or '–'}"
    if kind is Kind.META_CHANGED:
        return f"meta{on} {code(before)} {_ARROW} {code(after)}"
    if kind is Kind.TAGS_CHANGED:
        return f"tags{on} {before or '–'} {_ARROW} {after or '–'}"
    return str(kind)


def flags(change: Change) -> str:
    """ " (contract enforced, public)" — the promises the node made."""
    marks = [
        m for m, on in (("contract enforced", change.contracted), ("public", change.public)) if on
    ]
    return f" ({', '.join(marks)})" if marks else ""


def headline(change: Change) -> str:
    """ "`fct_orders`: `status` removed (contract enforced)"."""
    return f"{code(change.name)}: {what(change)}{flags(change)}"


def readers(impact: Impact | None, *, limit: int = 6) -> str:
    """ "read by models `a`, `b`; test `t`; exposure `e` (maybe: `f`)" ("" when nobody)."""
    if not impact:
        return ""
    assert impact is not None
    parts = []
    for group, noun in (
        (impact.models, "model"),
        (impact.tests, "test"),
        (impact.exposures, "exposure"),
    ):
        if not group:
            continue
        sure = [r for r in group if r.certainty == "sure"]
        maybe = [r for r in group if r.certainty != "sure"]
        text = (f"{noun}s " if len(group) > 1 else f"{noun} ") + _names(sure, limit)
        if maybe:
            text += (", " if sure else "") + "maybe " + _names(maybe, limit)
        parts.append(text.strip())
    more = f" and {impact.truncated} more" if impact.truncated else ""
    return "read by " + "; ".join(parts) + more


def _names(group: Sequence[Reader], limit: int) -> str:
    shown = ", ".join(code(r.name) for r in group[:limit])
    return shown + (f" +{len(group) - limit}" if len(group) > limit else "")


def reader_line(reader: Reader) -> str:
    """ "model `orders_daily` — selects `fct_orders.order_date` (makes `order_date`)"."""
    text = f"{reader.resource_type} {code(reader.name)} — {reader.via}"
    if reader.columns:
        text += " (makes " + ", ".join(code(c) for c in reader.columns) + ")"
    if reader.certainty != "sure":
        text += " — maybe"
    return text


def state_line(info: StateInfo | None) -> str:
    if info is None:
        return "–"
    text = info.label
    if info.generated_at is not None:
        text += f", generated {phrases.timestamp(info.generated_at)}"
    if info.catalog_at is None:
        text += ", no catalog.json"
    return text


def counts(review: ChangeReview) -> str:
    """ "4 breaking, 1 partial-breaking, 6 non-breaking"."""
    parts = [f"{len(review.of(c))} {c}" for c in Classification if review.of(c)]
    return ", ".join(parts) or "no changes"


def title(review: ChangeReview) -> str:
    if review.verdict is Verdict.CANNOT_REVIEW:
        return f"Cannot review the change: {review.reason}"
    if review.verdict is Verdict.BREAKING:
        return "Schema review of the change: breaking — " + phrases.plural(
            len(review.breaking), "breaking change"
        )
    if not review.changes:
        return "Schema review of the change: safe — no schema changes"
    return (
        "Schema review of the change: safe — "
        + phrases.plural(len(review.changes), "change")
        + ", none breaking"
    )


def mentions(owners: Sequence[str], mention: Callable[[str], str], *, limit: int = 30) -> str:
    """ "@dana, @lee +3 more" — capped: a review of a large change can name hundreds."""
    shown = ", ".join(mention(o) for o in owners[:limit]) or "–"
    return shown + (f" {phrases.more(limit, len(owners))}" if len(owners) > limit else "")


def codes(names: Sequence[str], *, limit: int = 20) -> str:
    """ "`a`, `b` +3 more"."""
    shown = ", ".join(code(n) for n in names[:limit])
    return shown + (f" {phrases.more(limit, len(names))}" if len(names) > limit else "")
