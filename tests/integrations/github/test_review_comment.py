"""`--format github` against GitHub's comment limit, on the wire: the summarised comment of a
review far over 65,536 characters (the renderer's own cut is tested in
tests/review/test_renderers.py) is accepted as rendered by the fake GitHub, which refuses
longer bodies as GitHub does (422); and a review only a little too long drops the collapsed
details before any table row."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.review.change import Change, Classification, Impact, Kind, Reader
from bot.review.github import LIMIT, MARKER, to_github
from bot.review.privacy import PrivacyFlag
from bot.review.report import ChangeReview, StateInfo, Verdict
from integrations.github import GitHubClient, upsert
from tests.fakes.github_api import MAX_BODY, FakeGitHub

BREAKING = Classification.BREAKING


def huge_review(changes: int = 4_000, owners: int = 300) -> ChangeReview:
    """Thousands of dropped columns, each read by several models with long names."""
    found = []
    for n in range(changes):
        readers = tuple(
            Reader(
                unique_id=f"model.shop.mart_reader_{n}_{r}",
                name=f"mart_reader_with_a_long_descriptive_name_{n}_{r}",
                resource_type="model",
                certainty="sure",
                via=f"selects `column_{n}`",
                owners=(f"@owner{(n + r) % owners}",),
            )
            for r in range(4)
        )
        found.append(
            Change(
                kind=Kind.COLUMN_REMOVED,
                node=f"model.shop.stg_table_{n}",
                name=f"stg_table_{n}",
                resource_type="model",
                column=f"column_{n}",
                before="VARCHAR",
                classification=BREAKING,
                reason="a column four models select was removed",
                owners=(f"@owner{n % owners}",),
                impact=Impact(readers=readers, owners=tuple(r.owners[0] for r in readers)),
            )
        )
    privacy = tuple(
        PrivacyFlag(
            node=f"model.shop.people_{n}",
            name=f"people_{n}",
            column="email",
            data_type="VARCHAR",
            category="e-mail address",
            origin="added",
            owners=(f"@owner{n}",),
        )
        for n in range(120)
    )
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    return ChangeReview(
        verdict=Verdict.BREAKING,
        base=StateInfo(ref="production", label="dbt Cloud run 1 (job 'Daily')", run_id=1),
        target=StateInfo(ref="the folder target", label="target", generated_at=at),
        changes=tuple(found),
        privacy=privacy,
        reviewed_at=at,
    )


def test_a_review_just_over_the_limit_keeps_every_row() -> None:
    # Small enough for the table, too large for the details: only the details are dropped.
    review = huge_review(changes=150)
    comment = to_github(review)
    assert len(comment) <= LIMIT
    assert sum(1 for line in comment.splitlines() if line.startswith("| 🔴 | `stg_table_")) == 150
    assert "the readers of" in comment


def test_github_accepts_the_summarised_comment_unchanged() -> None:
    comment = to_github(huge_review())
    with FakeGitHub() as github:
        github.open_pull_request("acme/shop", 9)
        client = GitHubClient(api_url=github.api_url, token=github.token)
        done = upsert(client, "acme/shop", 9, comment)
        assert done.action == "created"
        [posted] = github.comments("acme/shop", 9)
        assert posted.body == comment  # nothing cut again, no marker added twice
        assert len(comment) <= LIMIT == MAX_BODY and comment.startswith(MARKER)
        assert "This comment is cut to GitHub's size limit" in comment
