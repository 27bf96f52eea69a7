"""`pipebot discord sync|invite`, `pipebot doctor`'s Discord row and `pipebot serve` with a bad
token, as real processes against the fake Discord."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.crash.support import free_port
from tests.fakes.discord_api import APPLICATION_ID, BOT_TOKEN, GUILD_ID, FakeDiscord
from tests.shell import pipebot


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return pipebot(args, tmp_path, PIPEBOT_DATABASE_URL=f"sqlite:///{tmp_path}/bot.db", **env)


def discord_env(fake: FakeDiscord, token: str = BOT_TOKEN) -> dict[str, str]:
    return {"DISCORD_TOKEN": token, "PIPEBOT_DISCORD__API_URL": fake.api_url}


def test_sync_registers_the_pipebot_group_in_one_server(tmp_path: Path) -> None:
    with FakeDiscord() as fake:
        done = run(["discord", "sync", "--guild", GUILD_ID], tmp_path, **discord_env(fake))
        registered = fake.commands(GUILD_ID)
        global_commands = fake.commands()
    assert done.returncode == 0, done.stderr
    assert f"in server {GUILD_ID}" in done.stdout
    assert [c["name"] for c in registered] == ["pipebot"]
    names = {option["name"] for option in registered[0]["options"]}
    assert {"status", "dag", "triage", "lineage", "digest", "incident", "ask"} <= names
    dag = next(o for o in registered[0]["options"] if o["name"] == "dag")
    assert dag["options"][0]["autocomplete"] is True
    assert global_commands == []
    assert BOT_TOKEN not in done.stdout + done.stderr


def test_sync_without_a_token_says_what_to_set(tmp_path: Path) -> None:
    done = run(["discord", "sync"], tmp_path)
    assert done.returncode == 2
    assert "PIPEBOT_DISCORD__TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_invite_builds_the_link_from_the_scopes_and_permissions(tmp_path: Path) -> None:
    done = run(["discord", "invite", APPLICATION_ID], tmp_path)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith(f"https://discord.com/oauth2/authorize?client_id={APPLICATION_ID}")
    assert "scope=bot+applications.commands" in link
    permissions = int(link.split("permissions=")[1].split("&")[0])
    # view channel, send messages (and in threads), public threads, embeds, files, history
    for bit in (10, 11, 38, 35, 14, 15, 16):
        assert permissions & (1 << bit), bit


def test_doctor_checks_the_token_and_the_intents(tmp_path: Path) -> None:
    with FakeDiscord() as fake:
        good = run(["doctor"], tmp_path, **discord_env(fake))
        bad = run(["doctor"], tmp_path, **discord_env(fake, token="not-the-token"))
        intent = run(
            ["doctor"], tmp_path, **discord_env(fake), PIPEBOT_DISCORD__MESSAGE_CONTENT="true"
        )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Discord" in good.stdout and "logged in as pipebot" in good.stdout
    assert bad.returncode == 1
    assert "refused the bot token" in bad.stdout
    assert intent.returncode == 1
    assert "message-content intent is not enabled" in " ".join(intent.stdout.split())
    for done in (good, bad, intent):
        assert "not-the-token" not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr


def test_serve_with_a_refused_token_stops_with_one_line(tmp_path: Path) -> None:
    with FakeDiscord() as fake:
        done = run(
            ["serve", "--host", "127.0.0.1", "--port", str(free_port())],
            tmp_path,
            **discord_env(fake, token="not-the-token"),
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Discord refused the bot token" in done.stderr
    assert "Traceback" not in done.stderr
    assert "not-the-token" not in done.stderr
