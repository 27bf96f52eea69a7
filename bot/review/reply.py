"""A `ChangeReview` as a chat `Reply`: what Slack, Discord, the console, ``--format text`` and
``--format markdown`` show.

The top of the reply is the verdict, the two states, the counts and the owners to tell, then
one line per change, most severe first (capped, "+N more"); the readers of each change that
can break something — which models, tests and exposures, and how they read it — go in
`Reply.details` (posted in the reply's thread, collapsed in Markdown).
"""

from __future__ import annotations

from collections.abc import Callable

from bot import phrases
from bot.messages import Field, Reply, Section, Tone
from bot.owners import OwnerDirectory, display, unique_owners
from bot.review import wording
from bot.review.change import Change, Classification
from bot.review.report import ChangeReview, Verdict

LISTED = 15  # changes listed per classification in the top part
DETAILED = 25  # changes whose readers are listed in the details

_HEADINGS = {
    Classification.BREAKING: "Breaking",
    Classification.PARTIAL: "Partial-breaking",
    Classification.NON_BREAKING: "Non-breaking",
}
_MEANING = {
    Classification.BREAKING: "What reads these fails or changes at its next build or view.",
    Classification.PARTIAL: "Nothing in the project reads these; readers outside dbt (BI "
    "queries, notebooks) would break.",
    Classification.NON_BREAKING: "",
}


def to_reply(
    review: ChangeReview, *, platform: str = "", owners: OwnerDirectory | None = None
) -> Reply:
    """The reply for `platform` (owners become mentions where `owners` maps them)."""
    mention: Callable[[str], str] = (
        (lambda o: owners.mention(o, platform)) if owners is not None else display
    )
    sources = tuple(info.label for info in (review.base, review.target) if info is not None)
    if review.verdict is Verdict.CANNOT_REVIEW and not review.changes:
        return Reply(
            title=wording.title(review),
            tone=Tone.WARNING,
            text=" ".join(review.notes),
            sources=sources,
        )
    sections = [_summary(review, mention)]
    for classification in Classification:
        changes = review.of(classification)
        if changes:
            sections.append(_listing(classification, changes))
    if review.privacy:
        sections.append(_privacy(review, mention))
    if review.verdict is Verdict.BREAKING:
        tone = Tone.ERROR
    elif review.verdict is Verdict.CANNOT_REVIEW or review.partial or review.privacy:
        tone = Tone.WARNING
    else:
        tone = Tone.SUCCESS
    return Reply(
        title=wording.title(review),
        tone=tone,
        sections=tuple(sections),
        details=_details(review),
        sources=sources,
        notes=_notes(review),
    )


def _summary(review: ChangeReview, mention: Callable[[str], str]) -> Section:
    fields = [
        Field("Base", wording.state_line(review.base)),
        Field("Target", wording.state_line(review.target)),
        Field("Changes", wording.counts(review)),
    ]
    if review.select:
        fields.append(Field("Selected", wording.code(review.select)))
    if review.owners:
        fields.append(Field("Owners to tell", wording.mentions(review.owners, mention)))
    contracted = sorted({c.name for c in review.contracted})
    if contracted:
        fields.append(Field("Contracts changed", wording.codes(contracted)))
    return Section(fields=tuple(fields))


def _listing(classification: Classification, changes: tuple[Change, ...]) -> Section:
    bullets = []
    for change in changes[:LISTED]:
        line = wording.headline(change)
        said = wording.readers(change.impact, limit=4)
        if said:
            line += " — " + said
        bullets.append(line)
    if len(changes) > LISTED:
        bullets.append(phrases.more(LISTED, len(changes)))
    return Section(
        heading=f"{wording.MARK[classification]} {_HEADINGS[classification]} ({len(changes)})",
        text=_MEANING[classification],
        bullets=tuple(bullets),
    )


def _privacy(review: ChangeReview, mention: Callable[[str], str]) -> Section:
    bullets = [
        f"{wording.code(f.name + '.' + f.column)}"
        + (f" ({f.data_type})" if f.data_type else "")
        + f" looks like a {f.category} — {f.origin}; ask "
        + (wording.mentions(f.owners, mention) if f.owners else "the author (no owner)")
        for f in review.privacy[:LISTED]
    ]
    if len(review.privacy) > LISTED:
        bullets.append(phrases.more(LISTED, len(review.privacy)))
    return Section(
        heading=f"Personal data without a classification ({len(review.privacy)})",
        text="Judged by name and type only. Classify each in the column's `meta` (e.g. "
        "`pii: true` or `classification: internal`) and check masking, grants and retention.",
        bullets=tuple(bullets),
    )


def _details(review: ChangeReview) -> tuple[Section, ...]:
    out: list[Section] = []
    explained = [
        c
        for c in review.changes
        if c.classification is not Classification.NON_BREAKING or c.evidence
    ]
    for change in explained[:DETAILED]:
        bullets = [f"Evidence: {e.detail}" for e in change.evidence]
        impact = change.impact
        if impact is not None:
            bullets += [wording.reader_line(r) for r in impact.readers]
            if impact.truncated:
                bullets.append(
                    phrases.more(len(impact.readers), len(impact.readers) + impact.truncated)
                )
            bullets += [f"Unknown: {u}" for u in impact.unknown]
        fields: tuple[Field, ...] = ()
        if impact is not None and impact.owners:
            people = unique_owners(impact.owners, known=review.owners)
            fields = (Field("Owners", ", ".join(people)),)
        out.append(
            Section(
                heading=f"{wording.MARK[change.classification]} {change.name}: "
                + wording.what(change).replace("`", ""),
                text=change.reason[:1].upper() + change.reason[1:] + ".",
                fields=fields,
                bullets=tuple(bullets),
            )
        )
    if len(explained) > DETAILED:
        out.append(
            Section(
                text=f"{len(explained) - DETAILED} more changes are in "
                "`pipebot schema-review … --format json`."
            )
        )
    return tuple(out)


def _notes(review: ChangeReview) -> tuple[str, ...]:
    notes = list(review.notes)
    if any(c.evidence for c in review.changes):
        notes.append("Renames are inferred from evidence (listed in the details), never assumed.")
    if review.verdict is Verdict.CANNOT_REVIEW and review.reason:
        notes.append(f"Cannot give an all-clear: {review.reason}.")
    return tuple(notes)
