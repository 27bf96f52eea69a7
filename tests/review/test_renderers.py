"""The renderers of a `ChangeReview`: the pull-request comment keeps to GitHub's limit, every
JSON key is documented, the chat reply carries the verdict."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.messages import Tone
from bot.owners import OwnerDirectory
from bot.rendering import to_text
from bot.review.document import to_dict
from bot.review.github import LIMIT, MARKER, to_github
from bot.review.reply import LISTED, to_reply
from bot.review.report import ChangeReview, cannot_review
from tests.review.support import exposure, node, rel, review, state

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schema-review.md"


def big_review(models: int) -> ChangeReview:
    """`models` models that each lose a column read by a model and an exposure."""
    base, target, exposures = [], [], []
    for i in range(models):
        columns = {"id": "INTEGER", f"long_column_name_number_{i}": "VARCHAR"}
        base.append(node(f"model_with_a_long_name_{i}", columns, owners=(f"@owner{i}",)))
        target.append(
            node(f"model_with_a_long_name_{i}", {"id": "INTEGER"}, owners=(f"@owner{i}",))
        )
        reader = node(
            f"reader_{i}",
            {"x": "VARCHAR"},
            sql=f"select long_column_name_number_{i} as x "
            f"from {rel(f'model_with_a_long_name_{i}')}",
            parents=[f"model_with_a_long_name_{i}"],
            owners=(f"reader-owner-{i}@example.com",),
        )
        base.append(reader)
        target.append(reader)
        exposures.append(exposure(f"dashboard_{i}", f"reader_{i}", owners=(f"@viewer{i}",)))
    return review(state(*base, exposures=exposures), state(*target, exposures=exposures))


def test_a_small_review_is_whole() -> None:
    comment = to_github(big_review(3), mention=lambda o: "@gh-" + o.lstrip("@"))
    assert comment.startswith(MARKER + "\n## 🔴 pipebot schema review: breaking")
    assert comment.count("<details>") == 3 and "cut to GitHub's size limit" not in comment
    # Mapped owners become mentions.
    assert "**Owners to notify:** @gh-reader-owner-0@example.com" in comment


def test_a_huge_review_is_summarised_within_githubs_limit() -> None:
    result = big_review(1500)
    comment = to_github(result)
    assert len(comment) <= LIMIT
    assert "| 🔴 Breaking | 1500 |" in comment
    note = re.search(r"This comment is cut to GitHub's size limit: (.*) are not shown", comment)
    assert note is not None and "changes" in note.group(1)
    assert "--format json" in comment
    # Unmapped owners are code, not pings.
    assert "`@viewer0`" in comment and " @viewer0" not in comment


def test_the_chat_reply_lists_the_most_severe_first_and_caps() -> None:
    result = big_review(LISTED + 5)
    reply = to_reply(result, platform="slack", owners=OwnerDirectory(slack={"owner0": "U0"}))
    assert reply.tone is Tone.ERROR
    assert reply.title == f"Schema review of the change: breaking — {LISTED + 5} breaking changes"
    breaking = next(s for s in reply.sections if s.heading.startswith("🔴 Breaking"))
    assert len(breaking.bullets) == LISTED + 1 and breaking.bullets[-1] == "+5 more"
    assert "read by model `reader_0`; exposure `dashboard_0`" in breaking.bullets[0]
    assert reply.details and reply.details[0].bullets[0].startswith("model `reader_0` — selects")


def test_cannot_review_is_one_clear_sentence() -> None:
    reply = to_reply(
        cannot_review("the target (the folder x) could not be loaded: dbt: no folder x")
    )
    assert reply.tone is Tone.WARNING
    assert to_text(reply).startswith(
        "! Cannot review the change: the target (the folder x) could not be loaded"
    )
    assert "Cannot give an all-clear" in to_github(cannot_review("no catalog"))


def keys(value: Any, prefix: str = "") -> set[str]:
    """Every key of a JSON document, as `name` and as the table it is documented in."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(f"{prefix}{key}")
            found |= keys(inner, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            found |= keys(item, prefix.rstrip(".") + "[].")
    return found


def test_every_json_key_is_documented() -> None:
    result = big_review(2)
    documented = DOCS.read_text()
    document = to_dict(result)
    seen = keys(document)
    assert {"changes[].impact.readers[].via", "privacy", "summary.partial_breaking"} <= seen
    for key in sorted(seen):
        name = key.rsplit(".", 1)[-1]
        assert f"| `{name}` |" in documented or f"| `{key.split('.', 1)[-1]}` |" in documented, key
