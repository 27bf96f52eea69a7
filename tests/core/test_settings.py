"""Settings: env names, ecosystem fallbacks, readable errors, and documentation in step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings, reference

ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PIPEBOT_") or name in {
            "DATABASE_URL",
            "SLACK_BOT_TOKEN",
            "SLACK_SIGNING_SECRET",
            "SLACK_APP_TOKEN",
            "DISCORD_TOKEN",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
        }:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///pipebot.db"
    assert not s.airflow.enabled and not s.dbt.enabled and not s.agent.enabled
    assert s.agent.model == "claude-sonnet-5-5"


def test_nested_names_and_ecosystem_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPEBOT_AIRFLOW__BASE_URL", "https://airflow.example.com/")
    monkeypatch.setenv("PIPEBOT_WAREHOUSE__SCHEMAS", "analytics, staging")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db:5432/pipebot")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-eco")
    monkeypatch.setenv("PIPEBOT_SLACK__SIGNING_SECRET", "signing")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    s = load_settings()
    assert s.airflow.base_url == "https://airflow.example.com"
    assert s.warehouse.schemas == ["analytics", "staging"]
    assert s.database_url == "postgresql+psycopg://u:pw@db:5432/pipebot"
    assert s.slack.bot_token is not None and s.slack.bot_token.get_secret_value() == "xoxb-eco"
    assert s.agent.enabled
    assert {"xoxb-eco", "signing", "sk-ant-test", "pw"} <= set(s.secrets())


def test_pipebot_name_wins_over_ecosystem_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-ecosystem")
    monkeypatch.setenv("PIPEBOT_SLACK__BOT_TOKEN", "xoxb-pipebot")
    s = load_settings()
    assert s.slack.bot_token is not None and s.slack.bot_token.get_secret_value() == "xoxb-pipebot"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "PIPEBOT_AGENT__MODEL=claude-haiku-5-5\nANTHROPIC_API_KEY=k-1234\n"
    )
    s = load_settings()
    assert s.agent.model == "claude-haiku-5-5" and s.agent.enabled


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "PIPEBOT_DATABASE_URL",
            "not-a-url",
            "PIPEBOT_DATABASE_URL (or DATABASE_URL): expected a database URL",
        ),
        (
            "PIPEBOT_AIRFLOW__BASE_URL",
            "airflow.local",
            "PIPEBOT_AIRFLOW__BASE_URL: expected an http:// or https:// URL",
        ),
        (
            "PIPEBOT_AIRFLOW__TIMEOUT",
            "soon",
            "PIPEBOT_AIRFLOW__TIMEOUT: Input should be a valid number",
        ),
        (
            "PIPEBOT_AIRFLOW__API_VERSION",
            "v9",
            "PIPEBOT_AIRFLOW__API_VERSION: Input should be 'auto', 'v2' or 'v1'",
        ),
        (
            "PIPEBOT_DBT_CLOUD__ACCOUNT_ID",
            "-4",
            "PIPEBOT_DBT_CLOUD__ACCOUNT_ID: Input should be greater than 0",
        ),
        (
            "PIPEBOT_DBT__ARTIFACTS_DIR",
            "/no/such/dir",
            "PIPEBOT_DBT__ARTIFACTS_DIR: expected an existing folder",
        ),
        ("PIPEBOT_WAREHOUSE__URL", "::", "PIPEBOT_WAREHOUSE__URL: expected a SQLAlchemy URL"),
        (
            "PIPEBOT_AIRFLOW__BASEURL",
            "http://x",
            "PIPEBOT_AIRFLOW__BASEURL: is not a known setting",
        ),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPEBOT_WAREHOUSE__URL", "notaurl-with-secret-hunter2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIPEBOT_DATABASE_URL": "not-a-url"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PIPEBOT_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_every_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text()
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "docs/configuration.md" in readme
    for doc in reference():
        assert f"`{doc.env}`" in docs, f"{doc.env} missing from docs/configuration.md"
        assert f"# {doc.env}=" in example, f"{doc.env} missing from .env.example"
        assert doc.description, f"{doc.env} has no description"
        for alias in doc.also:
            assert f"`{alias}`" in docs


def test_docs_table_matches_the_code() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    docs = (ROOT / "docs" / "configuration.md").read_text()
    documented = [line for line in docs.splitlines() if re.match(r"^\|", line)]
    assert documented[: len(table)] == table, "regenerate with: pipebot config"
