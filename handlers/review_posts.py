"""Schema reviews of dbt Cloud CI runs, posted to their channel (job ``schema-review``).

The dbt Cloud webhook accepts a CI job's finished run as a job (`handlers.webhooks.Reviews`);
here a worker runs it: the core reviews the run and decides the post
(`bot.playbooks.ci_review.CiReviews.review`), and the post goes to the schema-review channel
through the sender of its chat (`handlers.deliveries`), keyed by the run, so the outbox sends
it once however often the job runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.alerts import Post
from bot.playbooks.ci_review import REVIEW_JOB, CiRun
from bot.work import Attempt, JobKind
from handlers.deliveries import Deliveries, Refused

log = logging.getLogger(__name__)


class ReviewPoster:
    def __init__(
        self,
        *,
        deliveries: Deliveries,
        review: Callable[[CiRun, bool], Post],
        platform: str,
        channel: str,
        workspace: str = "",
    ) -> None:
        self._deliveries = deliveries
        self._review = review
        self._platform = platform
        self._channel = channel
        self._workspace = workspace

    def jobs(self) -> list[JobKind[Any]]:
        return [JobKind(REVIEW_JOB, self.on_review, CiRun)]

    def on_review(self, run: CiRun, attempt: Attempt) -> None:
        sender = self._deliveries.sender(self._platform)
        if not self._channel or sender is None:
            log.warning(
                "a CI run's schema review has nowhere to be posted: set "
                "PIPEBOT_SCHEMA_REVIEW__CHANNEL (or PIPEBOT_ALERTS__CHANNEL) and its chat",
                extra={"run": run.run_id, "platform": self._platform},
            )
            return
        post = self._review(run, attempt.final)
        try:
            sender.send(post, workspace=self._workspace, channel=self._channel, thread=None)
        except Refused:
            return  # the sender logged why; the platform will not take it on a retry either
        log.info("schema review of a CI run posted", extra={"run": run.run_id})
