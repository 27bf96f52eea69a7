"""The schema review of a dbt Cloud CI run, posted to a channel on its own (issue 15, part 7).

dbt Cloud says a run finished (webhook ``job.run.completed``); when the run's job is one of the
configured CI jobs (``PIPEBOT_DBT_CLOUD__CI_JOB_IDS``), the run is reviewed against production
— the latest finished run of the deploy job, ``PIPEBOT_DBT_CLOUD__JOB_ID`` — exactly as
``schema-review <run-id>`` would, and the review is posted to the schema-review channel
(``PIPEBOT_SCHEMA_REVIEW__CHANNEL``, else the alert channel). With the agent configured, a
review that breaks something carries its migration advice (`bot.review.advice`)::

    reviews = CiReviews(sources=sources, ci_jobs=("1002",), owners=directory, platform="slack")
    run = CiRun(run_id="70131", job_id="1002", job="CI checks")
    reviews.wants(run)                      # True: a CI job's run
    post = reviews.review(run)              # Post(key="schema-review:70131", …)

**Once, and at least once.** The webhook's handler persists the job under the run's key,
``schema-review:<run id>``, before it answers, so a redelivered webhook (dbt Cloud retries up to
five times) is refused; nothing marks the run done before the worker has handed the post to
the outbox, which sends the post — keyed the same — once, and looks for it before sending again
after a crash. A run whose states cannot be loaded (dbt Cloud unavailable) raises on all but the
job's final attempt, so the job runs again; the final attempt posts what could be reviewed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from bot.agent import Agent
from bot.alerts import Post
from bot.commands import Request
from bot.errors import SourceUnavailable
from bot.facts import StateRef
from bot.messages import InboundMessage, no_progress
from bot.owners import OwnerDirectory
from bot.playbooks import change_review
from bot.ports import Sources
from bot.review.advice import with_advice
from bot.review.reply import to_reply

log = logging.getLogger(__name__)

# The job kind of an accepted CI run (the dbt Cloud webhook submits it; a worker posts it).
REVIEW_JOB = "schema-review"
PRODUCTION = StateRef(kind="production")


@dataclass(frozen=True, kw_only=True)
class CiRun:
    """A finished dbt Cloud run, as its webhook told it."""

    run_id: str
    job_id: str
    job: str = ""  # the job's name
    status: str = ""  # as dbt Cloud says it: Success, Error
    reason: str = ""  # why it ran, e.g. "Kicked off from GitHub by pull request #152"
    event_id: str = ""

    @property
    def key(self) -> str:
        """One review per run, however many deliveries tell of it."""
        return f"schema-review:{self.run_id}"


class CiReviews:
    """Decides which runs are reviewed, and reviews one into the post for the channel."""

    def __init__(
        self,
        *,
        sources: Sources,
        ci_jobs: Iterable[str | int],
        owners: OwnerDirectory,
        platform: str,
        agent: Agent | None = None,
    ) -> None:
        self._sources = sources
        self._jobs = frozenset(str(job).strip() for job in ci_jobs if str(job).strip())
        self._owners = owners
        self._platform = platform
        self._agent = agent

    def wants(self, run: CiRun) -> bool:
        """Whether `run` is a configured CI job's (any other job's run is not reviewed)."""
        return run.job_id.strip() in self._jobs

    def review(self, run: CiRun, *, final: bool = True) -> Post:
        """The review of `run` against production, as the post to make. Unless `final`, raises
        `SourceUnavailable` when a state could not be loaded (the job runs again)."""
        review = change_review.assess(
            self._sources, PRODUCTION, StateRef(kind="run", value=run.run_id)
        )
        if (review.base is None or review.target is None) and not final:
            raise SourceUnavailable("dbt Cloud", review.reason)
        reply = to_reply(review, platform=self._platform, owners=self._owners)
        if self._agent is not None:
            reply = with_advice(reply, review, agent=self._agent, request=self._request(run))
        said = f"dbt Cloud CI job {run.job or run.job_id} finished run {run.run_id}" + (
            f" ({run.reason.rstrip('.')})" if run.reason else ""
        )
        reply = replace(reply, text=f"{said}.\n\n{reply.text}".strip())
        log.info(
            "schema review of a CI run decided",
            extra={
                "run": run.run_id,
                "verdict": str(review.verdict),
                "changes": len(review.changes),
            },
        )
        return Post(reply=reply, key=run.key, thread=None)

    def _request(self, run: CiRun) -> Request:
        """The agent works for the run as if someone had asked `schema-review <run-id>`."""
        message = InboundMessage(
            platform=self._platform,
            workspace="",
            channel="schema-review",
            thread=run.key,
            user="pipebot-schema-review",
            text=f"schema-review {run.run_id}",
            event_id=f"{run.key}:advice",
        )
        return Request(
            message=message, args=(run.run_id,), sources=self._sources, progress=no_progress
        )
