"""The shell: the chat grammar, one exit-code convention, a truthful `doctor`, no library
chatter in a command's output, and a start-up that loads no chat or LLM SDK."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.playbooks import default_commands
from bot.store import Store
from tests.console.test_doctor import stopped_port
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.shell import pipebot

HEAVY = ("anthropic", "slack_bolt", "slack_sdk", "discord", "duckdb", "mcp", "rich", "requests")


@pytest.mark.parametrize(
    ("line", "code", "shown"),
    [
        (["dag", "orders_daily", "--demo"], 1, "DAG orders_daily"),  # it is failing: a finding
        (["lineage", "fct_orders", "--demo"], 0, "fct_orders"),
        (["triage", "orders_daily", "--demo"], 0, "orders_daily failed: transform"),
        (["triage", "dbt", "--demo"], 0, "dbt build: 2 failures"),
        (["triage", "--dag-id", "orders_daily", "--demo"], 0, "orders_daily failed"),
        (["status", "--demo", "--format", "json"], 1, '"title"'),
    ],
)
def test_the_shell_speaks_the_chat_grammar(
    tmp_path: Path, line: list[str], code: int, shown: str
) -> None:
    done = pipebot(line, tmp_path)
    assert done.returncode == code, done.stdout + done.stderr
    assert shown in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(
    "line", [["status"], ["digest"], ["dag", "x"], ["lineage", "m"], ["ask", "why?"]]
)
def test_a_command_whose_system_is_not_configured_exits_2_with_one_line(
    tmp_path: Path, line: list[str]
) -> None:
    done = pipebot(line, tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert re.search(r"(not|nothing is) configured: set ", done.stderr), done.stderr
    assert done.stdout == ""


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert pipebot(["triage", "a", "b", "c"], tmp_path).returncode == 2
    assert pipebot(["no-such-command"], tmp_path).returncode == 2
    unsupported = pipebot(["status"], tmp_path, PIPEBOT_WAREHOUSE__URL="snowflake://acct/db")
    assert unsupported.returncode == 2
    assert unsupported.stderr.count("\n") == 1 and "Traceback" not in unsupported.stderr


def test_every_chat_command_the_shell_offers_is_a_core_command() -> None:
    from bot.main import CHAT_COMMANDS

    store = Store.open("sqlite://")
    try:
        names = default_commands(incident_store=store.incidents).names
    finally:
        store.close()
    assert set(CHAT_COMMANDS) - {"ask"} <= set(names)


def test_doctor_with_nothing_configured_says_so(tmp_path: Path) -> None:
    done = pipebot(["doctor"], tmp_path, PIPEBOT_AIRFLOW_BASE_URL="http://localhost:8080")
    assert done.returncode == 2
    assert "nothing configured" in done.stdout
    assert "all checks passed" not in done.stdout
    assert "did you mean PIPEBOT_AIRFLOW__BASE_URL?" in done.stdout


def test_doctor_checks_the_slack_token_and_the_agent_key(tmp_path: Path) -> None:
    with FakeSlack() as slack, FakeAnthropic(api_keys={"sk-good"}) as anthropic:
        common = {
            "PIPEBOT_SLACK__API_URL": slack.api_url,
            "PIPEBOT_SLACK__MODE": "socket",
            "PIPEBOT_SLACK__APP_TOKEN": "xapp-1",
            "PIPEBOT_AGENT__BASE_URL": anthropic.url,
        }
        good = pipebot(
            ["doctor"], tmp_path, **common, SLACK_BOT_TOKEN=BOT_TOKEN, ANTHROPIC_API_KEY="sk-good"
        )
        bad = pipebot(
            ["doctor"], tmp_path, **common, SLACK_BOT_TOKEN="xoxb-wrong", ANTHROPIC_API_KEY="sk-bad"
        )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "bot pipebot in workspace" in good.stdout and "API key accepted" in good.stdout
    assert bad.returncode == 1
    assert "Slack refused the bot token (invalid_auth)" in bad.stdout
    assert "Anthropic refused the API key" in bad.stdout
    for done in (good, bad):
        assert "xoxb-wrong" not in done.stdout + done.stderr
        assert "sk-bad" not in done.stdout + done.stderr


def test_doctor_on_an_unreachable_slack_fails_and_library_warnings_stay_out(
    tmp_path: Path,
) -> None:
    done = pipebot(
        ["doctor"],
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        PIPEBOT_SLACK__MODE="socket",
        PIPEBOT_SLACK__APP_TOKEN="xapp-1",
        PIPEBOT_SLACK__API_URL=f"http://127.0.0.1:{stopped_port()}/api/",
        PIPEBOT_AIRFLOW__BASE_URL=f"http://127.0.0.1:{stopped_port()}",
        PIPEBOT_AIRFLOW__USERNAME="viewer",
        PIPEBOT_AIRFLOW__PASSWORD="secret-password",
    )
    assert done.returncode == 1
    assert "cannot reach the Slack API" in done.stdout
    assert "Retrying" not in done.stdout + done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_the_cli_starts_without_chat_or_llm_sdks(tmp_path: Path, flag: str) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", flag],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not [m for m in loaded if m.split(".")[0] in HEAVY], sorted(
        m for m in loaded if m.split(".")[0] in HEAVY
    )
