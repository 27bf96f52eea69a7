"""Alerts in Slack: other bots' alert messages in, incident triage posts out.

- `alert_message` (pure) picks another bot's top-level channel message out of an event and
  flattens its text, attachments and blocks; the listener persists it as a job.
- `SlackAlerts` runs those messages through the core's `AlertDesk` and hands what the desk
  decided to `handlers.deliveries.Deliveries`, which also runs the webhooks' ``alert`` jobs and
  the clock's ``digest`` jobs; as the Slack `Sender` it posts what belongs in Slack — in the
  alert's own thread, the incident's thread, or as a new message in the alert channel.

Everything goes through the one send path (`SlackPoster`), keyed by the incident or the digest
slot, so a job that runs again posts nothing twice.

The desk decides (is it an alert, which incident, what to say); this module only translates
and posts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.alerts import AlertDesk, AlertMatchers, Post
from bot.messages import ThreadRef
from bot.rendering import redacted
from bot.work import Attempt, JobKind
from handlers.deliveries import Deliveries, Refused
from handlers.slack.blocks import local_images, render_blocks
from handlers.slack.inbound import PLATFORM
from handlers.slack.poster import PostRefused, SlackPoster, Workspace

log = logging.getLogger(__name__)

ALERT_MESSAGE_JOB = "slack.alert_message"


def alert_message(body: dict[str, Any], *, bot_user_id: str | None) -> dict[str, Any] | None:
    """Another bot's top-level message in a channel, as a job payload; None otherwise (and for
    any payload that is not shaped like one: wrong types read as absent)."""
    event = body.get("event")
    if not isinstance(event, dict) or event.get("type") != "message" or event.get("thread_ts"):
        return None
    if not (event.get("bot_id") or event.get("subtype") == "bot_message"):
        return None
    if bot_user_id and event.get("user") == bot_user_id:
        return None  # our own message (bolt drops most of these already)
    if event.get("channel_type") not in (None, "channel", "group"):
        return None
    text = _flatten(event)
    channel, ts = _str(event.get("channel")), _str(event.get("ts"))
    if not text.strip() or not channel or not ts:
        return None
    authorizations = body.get("authorizations")
    first = authorizations[0] if isinstance(authorizations, list) and authorizations else None
    profile = event.get("bot_profile")
    return {
        "team": _str(body.get("team_id")) or _str(event.get("team")),
        "enterprise": _str(body.get("enterprise_id")) or None,
        "enterprise_install": isinstance(first, dict) and bool(first.get("is_enterprise_install")),
        "channel": channel,
        "ts": ts,
        "bot": _str(event.get("bot_id")),
        "username": _str(event.get("username"))
        or (_str(profile.get("name")) if isinstance(profile, dict) else ""),
        "text": text,
    }


# Slack's blocks nest a few levels (rich_text → section → elements); deeper is not a message.
_MAX_BLOCK_DEPTH = 8


def _flatten(event: dict[str, Any]) -> str:
    """Text, attachment and block text of a message, one piece per line."""
    parts = [_str(event.get("text"))]
    for attachment in _list(event.get("attachments")):
        if isinstance(attachment, dict):
            parts += [_str(attachment.get(k)) for k in ("pretext", "title", "text", "fallback")]
            parts += [
                f"{_str(f.get('title'))}: {_str(f.get('value'))}"
                for f in _list(attachment.get("fields"))
                if isinstance(f, dict)
            ]
    for block in _list(event.get("blocks")):
        parts += list(_block_text(block))
    return "\n".join(p for p in parts if p.strip())


def _block_text(block: Any, depth: int = 0) -> Sequence[str]:
    if not isinstance(block, dict) or depth > _MAX_BLOCK_DEPTH:
        return []
    found: list[str] = []
    text = block.get("text")
    if isinstance(text, dict) and _str(text.get("text")):
        found.append(text["text"])
    elif isinstance(text, str):
        found.append(text)
    for key in ("fields", "elements"):
        for child in _list(block.get(key)):
            found += _block_text(child, depth + 1)
    return found


# Another bot's payload is not trusted to be well formed: a non-string where Slack sends text
# reads as absent, so the conversion never raises (and never str()s a nested structure).
def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class SlackAlerts:
    """Another bot's alert messages in Slack channels in, and the `Sender` of Slack posts."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        desk: AlertDesk,
        matchers: AlertMatchers,
        poster: SlackPoster,
        redact: Any,
        deliveries: Deliveries,
        follow_bots: Sequence[str] = (),
    ) -> None:
        self._desk = desk
        self._matchers = matchers
        self._poster = poster
        self._redact = redact
        self._deliveries = deliveries
        self._follow = {b.strip().lower() for b in follow_bots if b.strip()}

    def jobs(self) -> list[JobKind[Any]]:
        return [JobKind(ALERT_MESSAGE_JOB, self.on_message, dict)]

    def register(self) -> None:
        """Become the deliveries' sender of Slack posts."""
        self._deliveries.add(self)

    def on_message(self, payload: dict[str, Any], attempt: Attempt) -> None:
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
        workspace = Workspace(
            team=str(payload["team"]),
            enterprise=payload.get("enterprise"),
            enterprise_install=bool(payload.get("enterprise_install")),
        )
        delivery = f"chat:{payload['team']}:{payload['channel']}:{payload['ts']}"
        posts = self._desk.process(alert, delivery=delivery, final=attempt.final)
        self._deliveries.deliver(posts, origin=workspace)

    def send(
        self, post: Post, *, workspace: str, channel: str, thread: str | None, origin: object = None
    ) -> str:
        """Post every part of `post`, rendered once; a new top-level post's further parts go in
        the thread it opens."""
        where = (
            replace(origin, team=workspace)
            if isinstance(origin, Workspace)
            else Workspace(team=workspace)
        )
        reply = redacted(post.reply, self._redact)
        messages = render_blocks(reply)
        try:
            first = self._poster.post(
                f"slack:{post.key}:0", where, channel=channel, thread=thread, message=messages[0]
            )
            # A chart goes where the message went (a digest: in the channel, under it), before
            # the details in its thread.
            for index, image in enumerate(local_images(reply)):
                self._poster.upload(
                    f"slack:{post.key}:file:{index}",
                    where,
                    channel=channel,
                    thread=thread,
                    path=image.url,
                    title=reply.title or "pipebot chart",
                    alt=image.alt,
                )
            for part, message in enumerate(messages[1:], start=1):
                self._poster.post(
                    f"slack:{post.key}:{part}",
                    where,
                    channel=channel,
                    thread=thread or first,
                    message=message,
                )
        except PostRefused as refused:
            raise Refused(refused.reason) from None
        return first
