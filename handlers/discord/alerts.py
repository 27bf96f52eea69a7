"""Alerts and digests in Discord: the `Sender` of what `handlers.deliveries` decided to post.

A new incident is posted in the configured alert channel and opens a thread from that message
(Discord gives it the message's id), where its further parts, its repeats and its "resolved"
note go. A post for an existing thread goes into the thread; a digest into the channel it was
scheduled in. Every message goes through the one send path (`DiscordPoster`), keyed by the
incident or the digest slot, so a job that runs again posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.alerts import Post
from bot.rendering import redacted
from handlers.deliveries import Refused
from handlers.discord.embeds import render_embeds
from handlers.discord.inbound import PLATFORM
from handlers.discord.poster import DiscordPoster, PostRefused
from handlers.discord.worker import thread_name


class DiscordAlerts:
    platform = PLATFORM

    def __init__(self, *, poster: DiscordPoster, redact: Callable[[str], str]) -> None:
        self._poster = poster
        self._redact = redact

    def send(
        self, post: Post, *, workspace: str, channel: str, thread: str | None, origin: object = None
    ) -> str:
        messages = render_embeds(redacted(post.reply, self._redact))
        try:
            first = self._poster.post(
                f"discord:{post.key}:0",
                workspace=workspace,
                channel=thread or channel,
                message=messages[0],
            )
            rest_in = thread
            if thread is None and (len(messages) > 1 or post.incident_id is not None):
                # An incident gets a thread of its own for what follows.
                rest_in = self._poster.start_thread(
                    channel=channel, message_id=first, name=thread_name(post.reply.title)
                )
            for part, message in enumerate(messages[1:], start=1):
                self._poster.post(
                    f"discord:{post.key}:{part}",
                    workspace=workspace,
                    channel=rest_in or channel,
                    message=message,
                )
        except PostRefused as refused:
            raise Refused(refused.reason) from None
        return first
