"""The one pull-request comment (issue 15, part 6): `pipebot github comment` and the client it
uses, against the fake GitHub REST API (tests/fakes/github_api.py) — paginated listing with
Link headers, POST once, PATCH after; GitHub Enterprise Server's /api/v3 prefix; every error
says what to do and never shows the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from integrations.errors import ReadOnlyRefused, UpstreamError, UpstreamUnavailable
from integrations.github import DEFAULT_MARKER, GitHubClient, upsert
from integrations.github.client import MAX_RETRY_AFTER_S
from integrations.github.comment import LIMIT, fit, marker_comment, with_marker
from tests.fakes.github_api import BOT_LOGIN, FakeGitHub
from tests.shell import pipebot

REPO = "acme/shop"
MARKER = "<!-- pipebot:schema-review -->"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    # Served as GitHub Enterprise Server serves it: under /api/v3.
    with FakeGitHub(prefix="/api/v3") as fake:
        fake.open_pull_request(REPO, 7)
        yield fake


def client_for(fake: FakeGitHub, *, token: str | None = None, timeout: float = 5.0) -> GitHubClient:
    return GitHubClient(
        api_url=fake.api_url, token=token or fake.token, timeout=timeout, backoff=0.01
    )


def comment(
    fake: FakeGitHub, tmp_path: Path, text: str, *args: str, **env: str
) -> tuple[int, str, str]:
    review = tmp_path / "review.md"
    review.write_text(text, encoding="utf-8")
    done = pipebot(
        ["github", "comment", "--pr", "7", "--file", str(review), *args],
        tmp_path,
        GITHUB_TOKEN=env.pop("token", fake.token),
        GITHUB_API_URL=fake.api_url,
        GITHUB_REPOSITORY=REPO,
        **env,
    )
    return done.returncode, done.stdout, done.stderr


def test_two_pushes_leave_one_comment_updated_in_place(github: FakeGitHub, tmp_path: Path) -> None:
    # 130 comments already: the listing takes two pages of 100, following Link: rel="next".
    for n in range(130):
        github.add_comment(REPO, 7, f"LGTM {n}")
    # Someone quoting the marker mid-comment is not the comment to edit.
    github.add_comment(REPO, 7, f"> see above\n{MARKER}\n", login="dana")

    code, out, err = comment(github, tmp_path, "## 🔴 pipebot schema review: breaking\n")
    assert code == 0, err
    assert out.startswith("created http") and "#issuecomment-" in out
    code, out, err = comment(github, tmp_path, "## 🟢 pipebot schema review: safe\n")
    assert code == 0, err
    assert out.startswith("updated http")

    mine = [c for c in github.comments(REPO, 7) if c.login == BOT_LOGIN]
    assert len(mine) == 1
    assert mine[0].body == f"{MARKER}\n## 🟢 pipebot schema review: safe\n"
    assert len(github.comments(REPO, 7)) == 132
    # The real wire format: per_page=100 on the first page, the Link URL after it, and one
    # POST then one PATCH.
    gets = [r for r in github.requests if r.method == "GET"]
    assert gets[0].path == "/api/v3/repos/acme/shop/issues/7/comments"
    assert gets[0].query == {"per_page": ["100"], "page": ["1"]}
    assert gets[1].path.startswith("/api/v3/repositories/") and gets[1].query["page"] == ["2"]
    assert [(r.method, r.path) for r in github.writes()] == [
        ("POST", "/api/v3/repos/acme/shop/issues/7/comments"),
        ("PATCH", f"/api/v3/repos/acme/shop/issues/comments/{mine[0].id}"),
    ]
    headers = github.writes()[0].headers
    assert headers["authorization"] == f"Bearer {github.token}"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["accept"] == "application/vnd.github+json"


def test_the_same_review_again_changes_nothing(github: FakeGitHub, tmp_path: Path) -> None:
    assert comment(github, tmp_path, "## same\n")[0] == 0
    code, out, _ = comment(github, tmp_path, "## same\n")
    assert code == 0 and out.startswith("unchanged")
    assert [r.method for r in github.writes()] == ["POST"]


def test_a_comment_over_githubs_limit_is_cut_and_accepted(github: FakeGitHub) -> None:
    body = "\n".join(f"| row {n} | {'x' * 90} |" for n in range(2_000))  # ~200,000 characters
    done = upsert(client_for(github), REPO, 7, body)
    [posted] = github.comments(REPO, 7)
    assert done.action == "created" and len(posted.body) <= LIMIT
    assert posted.body.startswith(MARKER)
    assert posted.body.endswith(
        "(cut here: the comment was longer than GitHub's 65,536 characters)\n"
    )
    assert fit("short") == "short"


def test_a_post_that_arrived_but_timed_out_is_not_posted_twice(github: FakeGitHub) -> None:
    # GitHub creates the comment but its answer never comes back in time.
    github.hold("POST", after=True)
    try:
        done = upsert(client_for(github, timeout=0.5), REPO, 7, "## review\n")
    finally:
        github.release()
    assert done.action == "created"
    assert len(github.comments(REPO, 7)) == 1
    assert [r.method for r in github.writes()] == ["POST"]


def test_a_github_that_does_not_answer_fails_within_the_timeout(github: FakeGitHub) -> None:
    github.hold("GET")
    try:
        with pytest.raises(UpstreamUnavailable, match=r"got no answer within 0\.5 s"):
            upsert(client_for(github, timeout=0.5), REPO, 7, "## review\n")
    finally:
        github.release()
    assert github.writes() == []


def test_errors_say_what_the_token_lacks_and_never_show_it(
    github: FakeGitHub, tmp_path: Path
) -> None:
    code, out, err = comment(github, tmp_path, "## review\n", token=github.read_only_token)
    assert code == 1 and out == ""
    assert "returned 403 (Resource not accessible by integration)" in err
    assert "issues=write; pull_requests=write" in err
    assert "`permissions: pull-requests: write`" in err and "from a fork" in err
    assert github.read_only_token not in err

    wrong = "ghp_wrongTokenThatMustNotBeShown42"
    code, _, err = comment(github, tmp_path, "## review\n", token=wrong)
    assert code == 1 and "401 (Bad credentials)" in err and "set GITHUB_TOKEN" in err
    assert wrong not in err

    github.open_pull_request(REPO, 8)
    review = tmp_path / "review.md"
    missing = pipebot(
        ["github", "comment", "--repo", "acme/nope", "--pr", "8", "--file", str(review)],
        tmp_path,
        GITHUB_TOKEN=github.token,
        GITHUB_API_URL=github.api_url,
    )
    assert missing.returncode == 1
    assert "acme/nope#8 does not exist or this token cannot see it" in missing.stderr

    github.rate_limited = True
    code, _, err = comment(github, tmp_path, "## review\n")
    assert code == 1 and "rate limit is used up (it resets at epoch 1764003600)" in err


def test_usage_and_configuration_errors_exit_2(github: FakeGitHub, tmp_path: Path) -> None:
    review = tmp_path / "review.md"
    review.write_text("## review\n")
    no_token = pipebot(
        ["github", "comment", "--repo", REPO, "--pr", "7", "--file", str(review)], tmp_path
    )
    assert no_token.returncode == 2 and "set GITHUB_TOKEN" in no_token.stderr
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    assert comment(github, tmp_path, "")[0] == 2
    bad_marker = comment(github, tmp_path, "## review\n", "--marker", "a -- b")
    assert bad_marker[0] == 2 and "a marker is a short name" in bad_marker[2]
    bad_repo = pipebot(
        ["github", "comment", "--repo", "acme", "--pr", "7", "--file", str(review)],
        tmp_path,
        GITHUB_TOKEN=github.token,
        GITHUB_API_URL=github.api_url,
    )
    assert bad_repo.returncode == 2 and "expected a repository as owner/name" in bad_repo.stderr
    assert github.writes() == []


def test_markers_name_their_own_comment(github: FakeGitHub) -> None:
    client = client_for(github)
    upsert(client, REPO, 7, "schema review")
    upsert(client, REPO, 7, "freshness report", marker="pipebot:freshness")
    upsert(client, REPO, 7, "schema review, again")
    bodies = sorted(c.body for c in github.comments(REPO, 7))
    assert bodies == [
        "<!-- pipebot:freshness -->\nfreshness report",
        f"{MARKER}\nschema review, again",
    ]
    assert marker_comment(DEFAULT_MARKER) == MARKER == marker_comment(MARKER)
    assert with_marker(f"{MARKER}\nbody", DEFAULT_MARKER) == f"{MARKER}\nbody"


def test_the_client_writes_nothing_but_comments(github: FakeGitHub) -> None:
    client = client_for(github)
    before = len(github.requests)
    for method, path in (
        ("DELETE", "/repos/acme/shop/issues/comments/1"),
        ("POST", "/repos/acme/shop/issues/7/labels"),
        ("PATCH", "/repos/acme/shop/pulls/7"),
        ("PUT", "/repos/acme/shop/pulls/7/merge"),
    ):
        with pytest.raises(ReadOnlyRefused, match="nothing was sent"):
            client._session.request(method, github.api_url + path)
    assert len(github.requests) == before


def test_a_next_page_on_another_host_is_not_followed(github: FakeGitHub) -> None:
    client = client_for(github)
    response = requests.Response()
    response.headers["Link"] = '<https://evil.example/x?page=2>; rel="next"'
    with pytest.raises(UpstreamError, match="another host"):
        client._next(response)
    assert MAX_RETRY_AFTER_S <= 30
