"""GitHub: the one pull-request comment a CI step keeps up to date (``pipebot github comment``).

Not a connector: nothing here reads data for the agent, and the only writes are adding and
editing a comment (`integrations.github.client`)."""

from integrations.github.client import GitHubClient, IssueComment
from integrations.github.comment import DEFAULT_MARKER, Upserted, upsert

__all__ = ["DEFAULT_MARKER", "GitHubClient", "IssueComment", "Upserted", "upsert"]
