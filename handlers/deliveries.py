"""Alerts, scheduled digests and drift checks, delivered to the chat they belong in.

The work engine runs three kinds of job that no person asked for: ``alert`` (a webhook accepted
an alert), ``digest`` (the clock fired a schedule) and ``drift`` (the clock's daily warehouse
snapshot). `Deliveries` runs them whatever chats are configured: the core decides what to post
(`AlertDesk.process`, the digest playbook, the drift check), and each post goes to the `Sender`
of its platform — the platform of the incident's thread, of the channel a digest was scheduled
in, or of the configured alert (or drift) channel. The thread a new incident's post opens is
remembered for its repeats and its "resolved" note. Without any chat, alerts are still triaged
and recorded (``incidents`` lists them) and drift is still decided (``drift`` shows it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from bot import metrics
from bot.alerts import ALERT_JOB, Alert, AlertDesk, Post
from bot.drift import DRIFT_JOB, DriftJob
from bot.messages import Reply, ThreadRef
from bot.playbooks.schedules import DIGEST_JOB, job_key
from bot.work import Attempt, JobKind

log = logging.getLogger(__name__)


class Refused(Exception):
    """The platform refused a post for good (the channel is gone …); the sender logged why."""


class Sender(Protocol):
    """One chat's way of posting what the core decided."""

    platform: str

    def send(
        self, post: Post, *, workspace: str, channel: str, thread: str | None, origin: object = None
    ) -> str:
        """Post every part of `post` once (keyed by ``post.key``); the first message's id, which
        is the thread a top-level post opens. `origin` is the sender's own context of the alert
        that led here (a Slack workspace's install), when it came from that chat. Raises
        `Refused` when the platform refuses for good."""
        ...


class Deliveries:
    def __init__(
        self,
        *,
        desk: AlertDesk,
        alert_platform: str,
        alert_channel: str,
        alert_workspace: str = "",
        digest: Callable[[dict[str, Any]], Reply | None] | None = None,
        drift: Callable[[DriftJob, bool], Post | None] | None = None,
        drift_platform: str = "",
        drift_channel: str = "",
        drift_workspace: str = "",
    ) -> None:
        self._desk = desk
        self._platform = alert_platform
        self._channel = alert_channel
        self._workspace = alert_workspace
        self._digest = digest
        self._drift = drift
        # The drift channel, else the alert channel (its platform and workspace with it).
        if drift_channel:
            self._drift_to = (drift_platform or alert_platform, drift_workspace, drift_channel)
        else:
            self._drift_to = (alert_platform, alert_workspace, alert_channel)
        self._senders: dict[str, Sender] = {}

    def add(self, sender: Sender) -> None:
        self._senders[sender.platform] = sender

    def sender(self, platform: str) -> Sender | None:
        """The chat that posts to `platform`, when this process has it configured."""
        return self._senders.get(platform)

    def jobs(self) -> list[JobKind[Any]]:
        return [
            JobKind(ALERT_JOB, self.on_alert, Alert),
            JobKind(DIGEST_JOB, self.on_digest, dict),
            JobKind(DRIFT_JOB, self.on_drift, DriftJob),
        ]

    def on_alert(self, alert: Alert, attempt: Attempt) -> None:
        posts = self._desk.process(alert, delivery=f"webhook:{alert.key}", final=attempt.final)
        self.deliver(posts)

    def deliver(self, posts: Sequence[Post], *, origin: object = None) -> None:
        for post in posts:
            if post.thread is not None:
                platform, workspace = post.thread.platform, post.thread.workspace
                channel, thread = post.thread.channel, post.thread.thread
            elif self._channel:
                platform, workspace = self._platform, self._workspace
                channel, thread = self._channel, None
            else:
                log.warning(
                    "an alert was triaged but there is nowhere to post it: set "
                    "PIPEBOT_ALERTS__CHANNEL",
                    extra={"key": post.key},
                )
                continue
            sender = self._senders.get(platform)
            if sender is None:
                log.warning(
                    "an alert was triaged for a chat that is not configured",
                    extra={"key": post.key, "platform": platform},
                )
                continue
            try:
                first = sender.send(
                    post, workspace=workspace, channel=channel, thread=thread, origin=origin
                )
            except Refused:
                continue
            if thread is None and post.incident_id is not None:
                self._desk.attach(
                    post.incident_id,
                    ThreadRef(
                        platform=platform, workspace=workspace, channel=channel, thread=first
                    ),
                )

    def on_digest(self, payload: dict[str, Any], attempt: Attempt) -> None:
        """A scheduled digest (a job the clock submitted): build it, post it to its channel."""
        sender = self._senders.get(str(payload.get("platform") or "slack"))
        if self._digest is None or sender is None:
            log.warning(
                "a digest job arrived but its chat is not configured in this process",
                extra={"platform": payload.get("platform"), "schedule": payload.get("schedule_id")},
            )
            return
        reply = self._digest(payload)
        if reply is None:
            return
        slot = datetime.fromisoformat(str(payload["slot"]))
        try:
            sender.send(
                Post(reply=reply, key=job_key(int(payload["schedule_id"]), slot), thread=None),
                workspace=str(payload["workspace"]),
                channel=str(payload["channel"]),
                thread=None,
            )
        except Refused:
            return
        metrics.DIGESTS_POSTED.labels(sender.platform).inc()

    def on_drift(self, job: DriftJob, attempt: Attempt) -> None:
        """The clock's daily drift check: the core takes the snapshot and decides what to
        post (once per snapshot pair); this posts it to the drift channel."""
        if self._drift is None:
            log.warning(
                "a drift job arrived but this process has no warehouse: set "
                "PIPEBOT_WAREHOUSE__URL where `pipebot serve` runs",
                extra={"snapshot": job.snapshot},
            )
            return
        post = self._drift(job, attempt.final)
        if post is None:
            return
        platform, workspace, channel = self._drift_to
        sender = self._senders.get(platform)
        if not channel or sender is None:
            log.warning(
                "warehouse drift was found but there is nowhere to post it: set "
                "PIPEBOT_DRIFT__CHANNEL (or PIPEBOT_ALERTS__CHANNEL); `drift` shows it",
                extra={"key": post.key, "platform": platform},
            )
            return
        try:
            sender.send(post, workspace=workspace, channel=channel, thread=None)
        except Refused:
            return
