"""A `ChangeReview` as a GitHub pull-request comment (``--format github``).

GitHub-flavoured Markdown: the verdict, a summary table of the counts, the owners to notify,
one table row per change, then the readers of each change that can break something in a
collapsed ``<details>`` block. The first line is a hidden marker (`MARKER`) a workflow finds
the previous comment by, to update it instead of adding one per push.

GitHub refuses comments over 65,536 characters; `to_github` stays under `limit` by dropping
details first, then table rows, and says what it left out and where to find all of it. An
owner is an @-mention only when `mention` maps them to a GitHub login: an unmapped ``@dana``
from dbt's ``meta`` is written as code, so that nobody of that name gets pinged by mistake.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.review import wording
from bot.review.change import Change, Classification
from bot.review.report import ChangeReview, Verdict

LIMIT = 65_536
MARKER = "<!-- pipebot:schema-review -->"
_HEADINGS = {
    Classification.BREAKING: "Breaking",
    Classification.PARTIAL: "Partial-breaking",
    Classification.NON_BREAKING: "Non-breaking",
}
_VERDICT_MARK = {Verdict.SAFE: "🟢", Verdict.BREAKING: "🔴", Verdict.CANNOT_REVIEW: "⚠️"}
# Room kept for the closing lines whatever is cut.
_RESERVE = 600


def unmapped(owner: str) -> str:
    """An owner without a GitHub login: shown, never pinged."""
    return wording.code(owner)


def to_github(
    review: ChangeReview,
    *,
    mention: Callable[[str], str] = unmapped,
    limit: int = LIMIT,
    full_output: str = "the job's `--format json` output",
) -> str:
    """The comment, at most `limit` characters."""
    head = _head(review, mention)
    rows = [_row(c) for c in review.changes]
    details = [
        _detail(c)
        for c in review.changes
        if c.classification is not Classification.NON_BREAKING or c.evidence
    ]
    notes = [f"<sub>{_inline(n)}</sub>" for n in review.notes]
    if any(c.evidence for c in review.changes):
        notes.append("<sub>Renames are inferred from the evidence shown, never assumed.</sub>")
    notes.append("<sub>Reviewed by pipebot from the dbt artifacts of both states.</sub>")
    tail = "\n".join(notes) + "\n"
    budget = limit - len(head) - len(tail) - _RESERVE
    table_head = "| | Node | Change | Read by |\n|---|---|---|---|\n"
    body = ""
    shown_rows = 0
    if rows:
        body = "\n### Changes\n\n" + table_head
        for row in rows:
            if len(body) + len(row) > budget:
                break
            body += row
            shown_rows += 1
    shown_details = 0
    if details and shown_rows == len(rows):
        section = "\n### Who reads what changed\n\n"
        if len(body) + len(section) < budget:
            body += section
            for detail in details:
                if len(body) + len(detail) > budget:
                    break
                body += detail
                shown_details += 1
    left_out = []
    if shown_rows < len(rows):
        left_out.append(f"{len(rows) - shown_rows} of {len(rows)} changes")
    if shown_details < len(details):
        left_out.append(f"the readers of {len(details) - shown_details} changes")
    cut = ""
    if left_out:
        cut = (
            f"\n> [!NOTE]\n> This comment is cut to GitHub's size limit: "
            f"{' and '.join(left_out)} are not shown. Every change is in {full_output}.\n"
        )
    text = f"{head}{body}{cut}\n{tail}"
    # The reserve covers the closing lines; a pathological head (thousands of owners) is cut.
    return text if len(text) <= limit else text[: limit - 20] + "\n\n…(cut)\n"


def _head(review: ChangeReview, mention: Callable[[str], str]) -> str:
    mark = _VERDICT_MARK[review.verdict]
    verdict = wording.VERDICT_WORDS[review.verdict]
    lines = [MARKER, f"## {mark} pipebot schema review: {verdict}", ""]
    if review.verdict is Verdict.CANNOT_REVIEW and review.reason:
        lines += [f"**Cannot give an all-clear:** {_inline(review.reason)}.", ""]
    lines += [
        f"**Base:** {_inline(wording.state_line(review.base))}  ",
        f"**Target:** {_inline(wording.state_line(review.target))}",
    ]
    if review.select:
        lines.append(f"  \n**Selected:** {wording.code(review.select)}")
    lines += ["", "| | Changes |", "|---|---:|"]
    for classification in Classification:
        lines.append(
            f"| {wording.MARK[classification]} {_HEADINGS[classification]} "
            f"| {len(review.of(classification))} |"
        )
    lines.append(f"| 🔒 Personal data without a classification | {len(review.privacy)} |")
    lines.append("")
    if review.owners:
        lines += [
            "**Owners to notify:** " + wording.mentions(review.owners, mention, limit=50),
            "",
        ]
    contracted = sorted({c.name for c in review.contracted})
    if contracted:
        lines += [
            "**Contracts changed:** " + wording.codes(contracted),
            "",
        ]
    if review.privacy:
        lines += ["### Personal data without a classification", ""]
        for flag in review.privacy[:50]:
            who = wording.mentions(flag.owners, mention, limit=5) if flag.owners else "the author"
            lines.append(
                f"- {wording.code(flag.name + '.' + flag.column)}"
                + (f" ({flag.data_type})" if flag.data_type else "")
                + f" looks like a {flag.category} ({flag.origin}) — ask {who} to classify it "
                "in `meta`"
            )
        if len(review.privacy) > 50:
            lines.append(f"- … and {len(review.privacy) - 50} more")
        lines.append("")
    return "\n".join(lines) + "\n"


def _row(change: Change) -> str:
    node = wording.code(change.name) + (" 🔒" if change.contracted else "")
    said = wording.readers(change.impact, limit=3).removeprefix("read by ") or "–"
    cells = (wording.MARK[change.classification], node, wording.what(change), said)
    return "| " + " | ".join(_cell(c) for c in cells) + " |\n"


def _detail(change: Change) -> str:
    summary = f"{wording.MARK[change.classification]} {_html(change.name)}: " + _html(
        wording.what(change).replace("`", "")
    )
    lines = [
        f"<details><summary>{summary}</summary>",
        "",
        _inline(change.reason[:1].upper() + change.reason[1:]) + ".",
        "",
    ]
    lines += [f"- Evidence: {e.detail}" for e in change.evidence]
    impact = change.impact
    if impact is not None:
        lines += [f"- {wording.reader_line(r)}" for r in impact.readers]
        if impact.truncated:
            lines.append(f"- … and {impact.truncated} more readers")
        lines += [f"- Unknown: {_inline(u)}" for u in impact.unknown]
        if not impact.readers and not impact.unknown:
            lines.append("- Nothing in the project reads it.")
    lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _inline(text: str) -> str:
    return " ".join(text.split())


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
