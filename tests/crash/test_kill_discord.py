"""SIGKILL mid-job with Discord: an app command whose job is running when `pipebot serve` dies
is answered exactly once after a restart — in the interaction's response while its token lives,
in the channel once it has expired."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.crash.support import Serve
from tests.crash.test_kill import running_jobs, wait_for
from tests.discord.conftest import embed_text, subcommand
from tests.fakes.airflow_server import GatedAirflow
from tests.fakes.discord_api import BOT_TOKEN, DATA_CHANNEL_ID, FakeDiscord

RECOVERY_S = 60


def discord_env(fake: FakeDiscord) -> dict[str, str]:
    return {
        "PIPEBOT_DISCORD__TOKEN": BOT_TOKEN,
        "PIPEBOT_DISCORD__API_URL": fake.api_url,
        "PIPEBOT_DISCORD__PROGRESS_INTERVAL": "0.2",
    }


def answers(fake: FakeDiscord, webhook_path: str) -> list[str]:
    """The texts pipebot put in an interaction's original response."""
    return [
        embed_text(c.json)
        for c in fake.calls_to("PATCH", re.escape(webhook_path) + "/messages/@original")
        if c.status < 300
    ]


# The expired-token path does not depend on the store: SQLite covers it.
@pytest.mark.parametrize(
    ("store", "token"), [("sqlite", "alive"), ("sqlite", "expired"), ("postgresql", "alive")]
)
def test_an_interaction_running_at_sigkill_is_answered_once(
    store: str, token: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        f"sqlite:///{tmp_path}/crash.db" if store == "sqlite" else request.getfixturevalue("pg_url")
    )
    with FakeDiscord() as fake, GatedAirflow() as airflow:
        serve = Serve(
            tmp_path,
            database_url=database_url,
            fake=None,
            airflow_url=airflow.url,
            extra_env=discord_env(fake),
        )
        airflow.close_gate()
        serve.start()
        try:
            fake.wait_ready(30)
            asked = fake.slash(options=subcommand("triage", target="orders_daily"))
            deferred = fake.wait_call("POST", re.escape(asked.callback_path), timeout=10)[0]
            airflow.wait_blocked(1, timeout=30)
            wait_for(lambda: running_jobs(database_url) == 1, 30, "the job running")
            serve.kill()
            killed_at = time.monotonic()
            if token == "expired":
                fake.expire_interactions()
            airflow.open_gate()
            serve.start()
            if token == "alive":
                fake.wait_until(
                    lambda: any("orders_daily" in a for a in answers(fake, asked.webhook_path)),
                    RECOVERY_S,
                    "the answer in the interaction's response",
                )
            else:
                fake.wait_until(
                    lambda: any(
                        "failed" in embed_text(m) and "used" in embed_text(m)
                        for m in fake.messages_in(DATA_CHANNEL_ID)
                    ),
                    RECOVERY_S,
                    "the answer in the channel",
                )
            answered_after = time.monotonic() - killed_at
            wait_for(lambda: running_jobs(database_url) == 0, 30, "no job left running")
        finally:
            serve.stop()
    assert deferred.json == {"type": 5}
    assert answered_after < RECOVERY_S
    bot_messages = [m for m in fake.messages_in(DATA_CHANNEL_ID) if m["author"].get("bot")]
    if token == "alive":
        # The deferred response became the answer; nothing else was posted.
        assert len(bot_messages) == 1, bot_messages
        assert "orders_daily" in embed_text(bot_messages[0])
    else:
        # The "thinking…" response stays (its token is dead); the answer is one channel post
        # saying who asked what.
        answered = [m for m in bot_messages if "used" in embed_text(m)]
        assert len(answered) == 1, bot_messages
        assert "/pipebot triage orders_daily" in embed_text(answered[0])
    print(f"\n[{store}, token {token}] answered {answered_after:.1f} s after SIGKILL")
