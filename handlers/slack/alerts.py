"""Alerts in Slack: other bots' alert messages in, incident triage posts out.

- `alert_message` (pure) picks another bot's top-level channel message out of an event and
  flattens its text, attachments and blocks; the listener persists it as a job.
- `SlackAlerts` runs the ``alert`` jobs (from the webhooks) and those messages through the core's
  `AlertDesk`, then posts what the desk decided through the outbox: in the alert's own thread,
  in the incident's thread, or as a new message in the alert channel — whose thread the desk is
  told about, so repeats and the "resolved" note land there.

It also posts the scheduled digests (``digest`` jobs the clock submitted) to the channel they
were scheduled in, the same way: one outbox row per part of the reply.

The desk decides (is it an alert, which incident, what to say); this module only translates
and posts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.alerts import ALERT_JOB, Alert, AlertDesk, AlertMatchers, Post
from bot.messages import Reply, ThreadRef
from bot.playbooks.schedules import DIGEST_JOB, job_key
from bot.rendering import from_dict, to_dict
from bot.store.outbox import SENT
from handlers.slack.blocks import render_blocks
from handlers.slack.delivery import POST, SlackDelivery
from handlers.slack.inbound import PLATFORM
from handlers.slack.worker import redact_strings

log = logging.getLogger(__name__)

ALERT_MESSAGE_JOB = "slack.alert_message"
# How long to wait for a new incident's first post before its thread is known.
THREAD_WAIT_S = 30.0


def alert_message(body: dict[str, Any], *, bot_user_id: str | None) -> dict[str, Any] | None:
    """Another bot's top-level message in a channel, as a job payload; None otherwise."""
    event = body.get("event") or {}
    if event.get("type") != "message" or event.get("thread_ts"):
        return None
    if not (event.get("bot_id") or event.get("subtype") == "bot_message"):
        return None
    if bot_user_id and event.get("user") == bot_user_id:
        return None  # our own message (bolt drops most of these already)
    if event.get("channel_type") not in (None, "channel", "group"):
        return None
    text = _flatten(event)
    if not text.strip() or not event.get("channel") or not event.get("ts"):
        return None
    authorizations = body.get("authorizations") or [{}]
    return {
        "team": str(body.get("team_id") or event.get("team") or ""),
        "enterprise": body.get("enterprise_id"),
        "enterprise_install": bool(authorizations[0].get("is_enterprise_install")),
        "channel": str(event["channel"]),
        "ts": str(event["ts"]),
        "bot": str(event.get("bot_id") or ""),
        "username": str(
            event.get("username") or (event.get("bot_profile") or {}).get("name") or ""
        ),
        "text": text,
    }


def _flatten(event: dict[str, Any]) -> str:
    """Text, attachment and block text of a message, one piece per line."""
    parts = [str(event.get("text") or "")]
    for attachment in event.get("attachments") or ():
        if isinstance(attachment, dict):
            parts += [
                str(attachment.get(k) or "") for k in ("pretext", "title", "text", "fallback")
            ]
            parts += [
                f"{f.get('title', '')}: {f.get('value', '')}"
                for f in attachment.get("fields") or ()
                if isinstance(f, dict)
            ]
    for block in event.get("blocks") or ():
        parts += list(_block_text(block))
    return "\n".join(p for p in parts if p.strip())


def _block_text(block: Any) -> Sequence[str]:
    if isinstance(block, dict):
        found: list[str] = []
        text = block.get("text")
        if isinstance(text, dict) and text.get("text"):
            found.append(str(text["text"]))
        elif isinstance(text, str):
            found.append(text)
        for key in ("fields", "elements"):
            for child in block.get(key) or ():
                found += _block_text(child)
        return found
    return []


class SlackAlerts:
    def __init__(
        self,
        *,
        desk: AlertDesk,
        matchers: AlertMatchers,
        delivery: SlackDelivery,
        redact: Any,
        channel: str,
        workspace: str,
        follow_bots: Sequence[str] = (),
        thread_wait: float = THREAD_WAIT_S,
        digest: Callable[[dict[str, Any]], Reply | None] | None = None,
    ) -> None:
        self._digest = digest
        self._desk = desk
        self._matchers = matchers
        self._delivery = delivery
        self._redact = redact
        self._channel = channel
        self._workspace = workspace
        self._follow = {b.strip().lower() for b in follow_bots if b.strip()}
        self._thread_wait = thread_wait

    def jobs(self) -> dict[str, Any]:
        return {
            ALERT_JOB: self.on_alert,
            ALERT_MESSAGE_JOB: self.on_message,
            DIGEST_JOB: self.on_digest,
        }

    def on_alert(self, payload: dict[str, Any]) -> None:
        self._post(self._desk.process(Alert.from_dict(payload)), meta={})

    def on_message(self, payload: dict[str, Any]) -> None:
        who = {payload.get("bot", "").lower(), payload.get("username", "").lower()} - {""}
        if self._follow and not who & self._follow:
            return
        thread = ThreadRef(
            platform=PLATFORM,
            workspace=str(payload["team"]),
            channel=str(payload["channel"]),
            thread=str(payload["ts"]),
        )
        alert = self._matchers.match(str(payload["text"]), thread=thread)
        if alert is None:
            return
        meta = {
            "enterprise": payload.get("enterprise"),
            "enterprise_install": payload.get("enterprise_install"),
        }
        self._post(self._desk.process(alert), meta=meta)

    def on_digest(self, payload: dict[str, Any]) -> None:
        """A scheduled digest (a job the clock submitted): build it, post it to its channel."""
        if self._digest is None:
            log.warning("a digest job arrived but digests are not wired in this process")
            return
        reply = self._digest(payload)
        if reply is None:
            return
        slot = datetime.fromisoformat(str(payload["slot"]))
        self._send(
            Post(reply=reply, key=job_key(int(payload["schedule_id"]), slot), thread=None),
            team=str(payload["workspace"]),
            channel=str(payload["channel"]),
            thread=None,
            meta={},
        )

    def _post(self, posts: Sequence[Post], *, meta: dict[str, Any]) -> None:
        for post in posts:
            if post.thread is not None:
                team, channel, thread = (
                    post.thread.workspace,
                    post.thread.channel,
                    post.thread.thread,
                )
            elif self._channel:
                team, channel, thread = self._workspace, self._channel, None
            else:
                log.warning(
                    "an alert was triaged but there is nowhere to post it: set "
                    "PIPEBOT_ALERTS__CHANNEL",
                    extra={"key": post.key},
                )
                continue
            self._send(post, team=team, channel=channel, thread=thread, meta=meta)

    def _send(
        self,
        post: Post,
        *,
        team: str,
        channel: str,
        thread: str | None,
        meta: dict[str, Any],
    ) -> None:
        """Post `post`, every part of it; a new top-level post's further parts (and, for an
        incident, its later updates) go in the thread it opens."""
        reply = to_dict(post.reply)
        body = {"team": team, **meta, "reply": redact_strings(reply, self._redact)}
        parts = len(render_blocks(from_dict(body["reply"])))
        first = f"slack:{post.key}:0"
        self._delivery.enqueue(
            first, team=team, channel=channel, thread=thread, kind=POST, body={**body, "part": 0}
        )
        if thread is None and (parts > 1 or post.incident_id is not None):
            # Wait for the new post's ts: the further parts and the incident need its thread.
            item = self._delivery.wait_sent(first, self._thread_wait)
            if item is None or item.status != SENT or not item.remote_ref:
                log.warning("top-level post not delivered yet", extra={"key": first})
                return
            thread = item.remote_ref
            if post.incident_id is not None:
                self._desk.attach(
                    post.incident_id,
                    ThreadRef(platform=PLATFORM, workspace=team, channel=channel, thread=thread),
                )
        previous = first
        for part in range(1, parts):
            key = f"slack:{post.key}:{part}"
            self._delivery.enqueue(
                key,
                team=team,
                channel=channel,
                thread=thread,
                kind=POST,
                body={**body, "part": part, "after": previous},
            )
            previous = key
