"""One pull-request comment per marker, updated in place on every push.

A CI step that comments on each push would bury the conversation; this keeps exactly one
comment per marker — a hidden HTML comment on its first line, ``<!-- pipebot:schema-review -->``
by default — and edits it::

    done = upsert(client, "acme/shop", 123, review_markdown)
    done.action       # "created" the first time, then "updated" (or "unchanged")

The comments are listed (every page) and the first one whose body starts with the marker is
edited; with none, one is created. Creating is the one call that is not idempotent: when it
fails in a way that may have reached GitHub (a timeout, a 5xx), the comments are listed again
and a comment found is edited instead of posting a second one. Two runs racing on the same
pull request can still both create one — the workflow's ``concurrency`` group prevents that.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.errors import UpstreamUnavailable
from integrations.github.client import GitHubClient, IssueComment

DEFAULT_MARKER = "pipebot:schema-review"
LIMIT = 65_536  # characters GitHub accepts in a comment body
_CUT = "\n\n…(cut here: the comment was longer than GitHub's {limit:,} characters)\n"


@dataclass(frozen=True, kw_only=True)
class Upserted:
    action: str  # created | updated | unchanged
    comment: IssueComment
    others: int = 0  # further comments with the same marker (left as they are)


def marker_comment(marker: str) -> str:
    """``pipebot:schema-review`` → ``<!-- pipebot:schema-review -->`` (a full HTML comment is
    kept as given)."""
    text = marker.strip()
    if text.startswith("<!--") and text.endswith("-->"):
        return text
    if not text or "--" in text or ">" in text:
        raise ValueError(
            f"a marker is a short name such as {DEFAULT_MARKER!r} (no '--' or '>'), got {marker!r}"
        )
    return f"<!-- {text} -->"


def with_marker(body: str, marker: str) -> str:
    """`body` with the hidden `marker` comment as its first line (added when missing)."""
    tag = marker_comment(marker)
    return body if body.lstrip().startswith(tag) else f"{tag}\n{body}"


def fit(body: str, limit: int = LIMIT) -> str:
    """`body` within `limit` characters: cut at a line break, saying so, when longer."""
    if len(body) <= limit:
        return body
    note = _CUT.format(limit=limit)
    room = limit - len(note)
    cut = body.rfind("\n", 0, room)
    return body[: cut if cut > 0 else room] + note


def upsert(
    client: GitHubClient, repo: str, number: int, body: str, *, marker: str = DEFAULT_MARKER
) -> Upserted:
    """Create or update the one comment of `repo`#`number` that carries `marker`."""
    text = fit(with_marker(body, marker))
    tag = marker_comment(marker)
    found = _marked(client, repo, number, tag)
    if found:
        return _edit(client, repo, found[0], text, others=len(found) - 1)
    try:
        return Upserted(action="created", comment=client.create_comment(repo, number, text))
    except UpstreamUnavailable:
        # The request may have arrived: look before posting again (once).
        found = _marked(client, repo, number, tag)
        if found:
            return _edit(client, repo, found[0], text, others=len(found) - 1, action="created")
        return Upserted(action="created", comment=client.create_comment(repo, number, text))


def _marked(client: GitHubClient, repo: str, number: int, tag: str) -> list[IssueComment]:
    # The marker must open the body: a reply quoting the comment does not count.
    return [c for c in client.comments(repo, number) if c.body.lstrip().startswith(tag)]


def _edit(
    client: GitHubClient,
    repo: str,
    comment: IssueComment,
    text: str,
    *,
    others: int,
    action: str = "updated",
) -> Upserted:
    if comment.body == text:
        # After a create that may have failed: it had arrived, so it is the one created.
        same = "unchanged" if action == "updated" else action
        return Upserted(action=same, comment=comment, others=others)
    return Upserted(
        action=action, comment=client.update_comment(repo, comment.id, text), others=others
    )
