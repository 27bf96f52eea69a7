"""Slack as a channel: slash commands, mentions, DMs, assistant threads and buttons, in Socket
Mode or over HTTP, for one workspace (bot token) or many (OAuth).

Modules: `inbound` (payload → `SlackTurn` → `InboundMessage`, pure), `blocks` (`Reply` → Block
Kit within Slack's limits, pure), `signature` (request signatures on the raw bytes), `app`
(Bolt wiring, the ack path), `worker` (answering a turn off the request path), `progress`
("working…" edits, assistant status), `poster` (the one send path: outbox rows, reconciling
before a resend), `clients` (Web API clients, tokens per workspace), `oauth` (installation and
state stores on the bot's database), `alerts` (other bots' alerts in, incident posts out).
See docs/slack.md and docs/alerts.md.
"""

from handlers.slack.app import AlertIntake, SlackChannel, connection_mode
from handlers.slack.blocks import SlackMessage, render_blocks
from handlers.slack.inbound import SlackTurn, to_inbound

__all__ = [
    "AlertIntake",
    "SlackChannel",
    "SlackMessage",
    "SlackTurn",
    "connection_mode",
    "render_blocks",
    "to_inbound",
]
