"""Discord: the discord.py 2.x edges of pipebot (docs/discord.md).

- `app` — the client, its events and app commands, accepting work; `sync` and `check`;
- `inbound` — events → `DiscordTurn` (pure);
- `worker` — answering a turn (a job); `alerts` — the sender of alerts and digests;
- `poster` — the one send path; `embeds` — `Reply` → messages within Discord's limits;
- `runtime` — the client's own loop and thread.
"""

from handlers.discord.app import DiscordChannel, check, intents, invite_url, point_at, sync

__all__ = ["DiscordChannel", "check", "intents", "invite_url", "point_at", "sync"]
