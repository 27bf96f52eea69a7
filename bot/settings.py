"""pipebot's one typed configuration, read once at start-up and passed down.

Environment variables use the prefix ``PIPEBOT_`` and ``__`` between a section and its field
(``PIPEBOT_AIRFLOW__BASE_URL``); a ``.env`` file in the working directory is read too. The names
the ecosystem already uses (``DATABASE_URL``, ``SLACK_BOT_TOKEN``, ``ANTHROPIC_API_KEY`` …) are
accepted as fallbacks, with the ``PIPEBOT_`` name winning when both are set.

A section left unset disables its connector. ``load_settings`` turns a validation failure into a
`ConfigError` whose message names the environment variable and what it expects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.errors import ConfigError

ENV_PREFIX = "PIPEBOT_"
NESTED_DELIMITER = "__"

# Names other tools already use, mapped to (section, field); section None = top level.
ECOSYSTEM_NAMES: dict[str, tuple[str | None, str]] = {
    "DATABASE_URL": (None, "database_url"),
    "PORT": (None, "port"),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "DISCORD_TOKEN": ("discord", "token"),
    "ANTHROPIC_API_KEY": ("agent", "api_key"),
    "ANTHROPIC_BASE_URL": ("agent", "base_url"),
    # What GitHub Actions provides (GITHUB_API_URL is set on every runner, GitHub Enterprise
    # Server's included; GITHUB_TOKEN is passed in the step's env).
    "GITHUB_TOKEN": ("github", "token"),
    "GITHUB_API_URL": ("github", "api_url"),
}


# Lists come from env vars as "a, b, c" (not JSON), split by `_comma_list`.
CommaList = Annotated[list[str], NoDecode]


def _http_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip()
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AirflowSettings(_Section):
    base_url: str | None = Field(
        None, description="Airflow webserver/API server URL, e.g. https://airflow.example.com"
    )
    username: str | None = Field(None, description="Airflow user (a Viewer role is enough)")
    password: SecretStr | None = Field(None, description="Password of that user")
    token: SecretStr | None = Field(
        None, description="A ready-made API token (JWT); used instead of username/password"
    )
    api_version: Literal["auto", "v2", "v1"] = Field(
        "auto", description="auto detects Airflow 3 (/api/v2) or Airflow 2 (/api/v1)"
    )
    timeout: float = Field(10.0, gt=0, le=300, description="Seconds to wait for each API call")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate")

    _check_url = field_validator("base_url")(_http_url)

    @property
    def enabled(self) -> bool:
        return self.base_url is not None


class DbtCloudSettings(_Section):
    account_id: int | None = Field(None, gt=0, description="dbt Cloud account id (a number)")
    token: SecretStr | None = Field(
        None, description="dbt Cloud service token with read-only / metadata permissions"
    )
    base_url: str = Field(
        "https://cloud.getdbt.com",
        description="Access URL of your dbt Cloud region or cell, e.g. https://ab123.us1.dbt.com",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Secret dbt Cloud shows when you create the outgoing webhook"
    )
    job_id: int | None = Field(
        None, gt=0, description="Production job whose latest artifacts describe the project"
    )
    discovery_url: str | None = Field(
        None,
        description="dbt Discovery (metadata) GraphQL URL, e.g. "
        "https://metadata.cloud.getdbt.com/graphql; only `query` documents are ever sent",
    )
    timeout: float = Field(20.0, gt=0, le=300, description="Seconds to wait for each API call")
    ci_job_ids: CommaList = Field(
        default_factory=list,
        description="Comma-separated ids of CI jobs: each finished run of one (its webhook "
        "`job.run.completed`) is schema-reviewed against production (JOB_ID's latest run) and "
        "posted to PIPEBOT_SCHEMA_REVIEW__CHANNEL",
    )

    _check_url = field_validator("base_url", "discovery_url")(_http_url)
    _split = field_validator("ci_job_ids", mode="before")(_comma_list)

    @field_validator("ci_job_ids")
    @classmethod
    def _job_ids(cls, value: list[str]) -> list[str]:
        for job in value:
            if not job.isdigit() or int(job) == 0:
                raise ValueError(f"expected dbt Cloud job ids (numbers), got {job!r}")
        return value

    @property
    def enabled(self) -> bool:
        return self.account_id is not None and self.token is not None


class DbtSettings(_Section):
    artifacts_dir: Path | None = Field(
        None, description="A dbt target/ folder holding manifest.json, run_results.json …"
    )

    @field_validator("artifacts_dir")
    @classmethod
    def _must_exist(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"expected an existing folder (a dbt target/ directory): {value}")
        return value

    @property
    def enabled(self) -> bool:
        return self.artifacts_dir is not None


class WarehouseSettings(_Section):
    url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the warehouse, e.g. postgresql+psycopg://reader@host/db "
        "or duckdb:///path/to/file.duckdb (use a role that can read catalog views only)",
    )
    schemas: CommaList = Field(
        default_factory=list, description="Comma-separated schemas to describe (empty: all)"
    )
    statement_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds a catalog query may run before it is cancelled"
    )
    row_cap: int = Field(5000, gt=0, le=1_000_000, description="Most rows a guarded query returns")
    byte_cap: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        le=2**31,
        description="Most bytes a guarded query returns (approximate: characters of text, 8 per "
        "other value); a longer result is cut there with a note, not failed",
    )
    usage: bool = Field(
        True,
        description="Read the warehouse's spend and query history (`costs`, the digest's "
        "spend line, the spend tools) on Snowflake, BigQuery, Redshift and Databricks; "
        "false when the login is not granted them (docs/warehouses.md)",
    )
    credit_price: float | None = Field(
        None,
        gt=0,
        description="Snowflake: money per credit, to show spend as money next to credits "
        "(your contract's price; list prices are 2-4 USD by edition); unset shows credits only",
    )
    tib_price: float | None = Field(
        6.25,
        gt=0,
        description="BigQuery: money per TiB billed (on-demand); the default is the on-demand "
        "list price in the US multi-region; empty shows bytes only",
    )
    dbu_price: float | None = Field(
        None,
        gt=0,
        description="Databricks: money per DBU (by SKU and contract); unset shows DBUs only",
    )
    currency: str = Field(
        "USD", min_length=1, max_length=8, description="Currency the prices above are in"
    )
    usage_max_bytes_billed: int = Field(
        1024**3,
        ge=10 * 1024**2,
        description="BigQuery: most bytes one query-history query may bill (maximumBytesBilled; "
        "INFORMATION_SCHEMA queries bill at least 10 MB each); a larger one fails unbilled",
    )

    _split = field_validator("schemas", mode="before")(_comma_list)

    @field_validator("credit_price", "tib_price", "dbu_price", mode="before")
    @classmethod
    def _no_price(cls, value: object) -> object:
        # An empty variable means "no price": show the warehouse's own unit only.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("url")
    @classmethod
    def _sqlalchemy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError(
                "expected a SQLAlchemy URL such as postgresql+psycopg://user@host/db"
            ) from None
        return value

    @property
    def enabled(self) -> bool:
        return self.url is not None


# The bot scopes pipebot uses; deploy/slack-app-manifest.yaml lists the same (a test checks).
SLACK_BOT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "chat:write",
    "chat:write.public",
    "commands",
    "files:write",
    "groups:history",
    "im:history",
)


class SlackSettings(_Section):
    """Slack: a single-workspace bot token, or OAuth installs into many workspaces."""

    bot_token: SecretStr | None = Field(None, description="Bot token (xoxb-…)")
    signing_secret: SecretStr | None = Field(None, description="Signing secret (HTTP mode)")
    app_token: SecretStr | None = Field(None, description="App-level token (xapp-…, Socket Mode)")
    api_url: str | None = Field(
        None,
        description="Slack Web API base URL (GovSlack, proxies); default https://slack.com/api/",
    )
    mode: Literal["auto", "socket", "http"] = Field(
        "auto",
        description="How Slack reaches pipebot: socket (Socket Mode, needs the app token), http "
        "(POST /slack/events, needs the signing secret), auto (Socket Mode when an app token is "
        "set, else HTTP)",
    )
    client_id: str | None = Field(
        None,
        description="OAuth client id: set it with the client secret to let many workspaces "
        "install pipebot at /slack/install (instead of one bot token)",
    )
    client_secret: SecretStr | None = Field(None, description="OAuth client secret")
    scopes: CommaList = Field(
        default_factory=lambda: list(SLACK_BOT_SCOPES),
        description="Comma-separated bot scopes requested by the OAuth install; keep them in step "
        "with deploy/slack-app-manifest.yaml",
    )
    redirect_uri: str | None = Field(
        None,
        description="Public OAuth redirect URL, e.g. https://pipebot.example.com/slack/"
        "oauth_redirect (default: the one configured in the Slack app)",
    )
    progress_interval: float = Field(
        1.0,
        ge=0.2,
        le=60,
        description="Least seconds between two updates of a “working…” message or status",
    )
    stream: bool = Field(
        True,
        description="Stream answers in Slack assistant threads (chat.startStream); when off, "
        "or when Slack refuses, answers are posted as messages",
    )

    _check_url = field_validator("api_url", "redirect_uri")(_http_url)
    _split = field_validator("scopes", mode="before")(_comma_list)

    @property
    def oauth(self) -> bool:
        """Multi-workspace: installs through the OAuth flow, tokens in the database."""
        return self.client_id is not None and self.client_secret is not None

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None or self.oauth


class DiscordSettings(_Section):
    token: SecretStr | None = Field(None, description="Discord bot token")
    api_url: str | None = Field(
        None, description="Discord REST base URL, e.g. https://discord.com/api/v10 (proxies, tests)"
    )
    message_content: bool = Field(
        False,
        description="Request the privileged message-content intent (enable it in the Developer "
        "Portal first): follow-ups in pipebot's threads are then answered without a mention",
    )
    progress_interval: float = Field(
        1.0, gt=0, le=60, description="Seconds between progress edits of a working message"
    )

    @property
    def enabled(self) -> bool:
        return self.token is not None

    _check_url = field_validator("api_url")(_http_url)


class AgentSettings(_Section):
    api_key: SecretStr | None = Field(
        None, description="Anthropic API key; without it commands work, free-form questions don't"
    )
    base_url: str | None = Field(None, description="Anthropic API base URL (gateways, tests)")
    model: str = Field("claude-sonnet-5-5", min_length=1, description="Claude model id")
    max_steps: int = Field(
        8, ge=1, le=50, description="Model turns per question; the last one may not call tools"
    )
    max_tool_calls: int = Field(24, ge=1, le=200, description="Tool calls per question")
    max_tokens: int = Field(2048, ge=256, le=16000, description="Output tokens per model response")
    timeout: float = Field(
        120.0, gt=0, le=1800, description="Wall-clock seconds for one answer, tools included"
    )
    request_timeout: float = Field(
        60.0, gt=0, le=600, description="Seconds to wait for one Messages API response"
    )
    conversation_token_budget: int = Field(
        300_000, ge=1000, description="Tokens (in + out + cache) one thread may spend"
    )
    daily_token_budget: int = Field(
        3_000_000, ge=1000, description="Tokens the whole deployment may spend per UTC day"
    )
    tool_output_chars: int = Field(
        12_000, ge=500, le=200_000, description="Characters of one tool result the model sees"
    )

    _check_url = field_validator("base_url")(_http_url)

    @property
    def enabled(self) -> bool:
        return self.api_key is not None


class RedactionSettings(_Section):
    patterns: CommaList = Field(
        default_factory=list,
        description="Comma-separated extra regular expressions masked everywhere "
        "(e.g. customer ids)",
    )
    pii_columns: CommaList = Field(
        default_factory=list,
        description="Comma-separated column names whose values are masked in tool outputs "
        "(e.g. email,phone)",
    )

    _split = field_validator("patterns", "pii_columns", mode="before")(_comma_list)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression {pattern!r}: {exc}") from None
        return value


class AlertMatcherSpec(_Section):
    """A pattern that recognises another bot's alert message in a channel."""

    name: str = Field(description="A label for logs, e.g. 'airflow-slack-notifier'")
    pattern: str = Field(
        description="Regular expression with named groups: dag_id or job, and optionally "
        "run_id, task_id, status"
    )
    system: Literal["airflow", "dbt"] = Field(description="Which system the alert is about")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if not {"dag_id", "job", "run_id"} & set(compiled.groupindex):
            raise ValueError("needs a named group dag_id, job or run_id")
        return value


class AlertSettings(_Section):
    """Alert intake and incidents."""

    channel: str = Field(
        "",
        description="Where alerts from webhooks are triaged when they have no thread of their "
        "own: a Slack channel id (e.g. C0123456789) or a Discord channel id",
    )
    platform: Literal["", "slack", "discord"] = Field(
        "",
        description="Which chat that channel is in (empty: Slack when Slack is configured, "
        "else Discord)",
    )
    workspace: str = Field(
        "",
        description="Slack workspace (team) id of that channel; needed only with OAuth "
        "(multi-workspace) installs",
    )
    window_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 30,
        description="Repeats of a failure within this window join its incident",
    )
    matchers: list[AlertMatcherSpec] = Field(
        default_factory=list,
        description="JSON list of extra matchers for alerts other bots post in channels, e.g. "
        '[{"name": "ours", "pattern": "DAG (?P<dag_id>\\S+) failed", "system": "airflow"}]',
    )
    follow_bots: CommaList = Field(
        default_factory=list,
        description="Comma-separated bot ids/names whose channel messages are checked for "
        "alerts (empty: any bot message that a matcher recognises)",
    )

    _split = field_validator("follow_bots", mode="before")(_comma_list)


class OwnerSettings(_Section):
    """How owner names from Airflow and dbt become mentions in chat."""

    slack: CommaList = Field(
        default_factory=list,
        description="Comma-separated owner=ID pairs: a user (U…) or user group (S…), e.g. "
        "dana=U024BE7LH,data-platform=S0614TZR7,fin-de@example.com=U0G9QF9C6",
    )
    discord: CommaList = Field(
        default_factory=list,
        description="Comma-separated owner=ID pairs of Discord users (or role:ID for roles)",
    )
    github: CommaList = Field(
        default_factory=list,
        description="Comma-separated owner=login pairs of GitHub users or teams (org/team), "
        "for mentions in the pull-request comment, e.g. dana=dana-gh,data-platform=acme/data",
    )

    _split = field_validator("slack", "discord", "github", mode="before")(_comma_list)

    @field_validator("slack", "discord", "github")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        for pair in value:
            name, _, ident = pair.partition("=")
            if not name.strip() or not ident.strip():
                raise ValueError(f"expected owner=ID pairs, got {pair!r}")
        return value


class AccessSettings(_Section):
    """Who may use which command group; an empty list means everyone.

    A channel entry also matches what contains the channel: a Discord server (guild) id allows
    all its channels, a channel id its threads. Users and roles are alternatives: a listed user
    or a member holding a listed role."""

    read_channels: CommaList = Field(
        default_factory=list, description="Channels allowed to use read commands (status, dag …)"
    )
    read_users: CommaList = Field(default_factory=list, description="Users allowed read commands")
    ask_channels: CommaList = Field(
        default_factory=list, description="Channels allowed to ask the agent (costs tokens)"
    )
    ask_users: CommaList = Field(default_factory=list, description="Users allowed to ask the agent")
    incidents_channels: CommaList = Field(
        default_factory=list, description="Channels allowed to acknowledge/resolve/mute incidents"
    )
    incidents_users: CommaList = Field(
        default_factory=list, description="Users allowed to acknowledge/resolve/mute incidents"
    )
    digest_channels: CommaList = Field(
        default_factory=list, description="Channels allowed to schedule or remove digests"
    )
    digest_users: CommaList = Field(
        default_factory=list, description="Users allowed to schedule or remove digests"
    )
    read_roles: CommaList = Field(
        default_factory=list, description="Discord role ids allowed read commands"
    )
    ask_roles: CommaList = Field(
        default_factory=list, description="Discord role ids allowed to ask the agent"
    )
    incidents_roles: CommaList = Field(
        default_factory=list, description="Discord role ids allowed to act on incidents"
    )
    digest_roles: CommaList = Field(
        default_factory=list, description="Discord role ids allowed to schedule digests"
    )

    _split = field_validator("*", mode="before")(_comma_list)


class WebhookSettings(_Section):
    token: SecretStr | None = Field(
        None, description="Shared token Airflow callbacks and generic alerts must present"
    )


class ServerSettings(_Section):
    """The HTTP front door of `pipebot serve` (see docs/operations.md)."""

    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="Largest request body accepted on /slack/events and /webhooks/* (bytes); "
        "larger ones get 413 before they are read",
    )
    body_timeout: float = Field(
        10.0,
        gt=0,
        le=120,
        description="Seconds a client may take to send a request body before it gets 408",
    )
    limit_concurrency: int = Field(
        256,
        ge=8,
        le=100_000,
        description="Connections and requests served at once; beyond it new ones get 503",
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, le=300, description="Seconds an idle keep-alive connection is kept open"
    )


class WorkSettings(_Section):
    """Accepted work: how it runs, is retried and is recovered after a crash."""

    concurrency: int = Field(
        32,
        ge=1,
        le=512,
        description="Jobs a worker process runs at once; each may wait minutes on LLM and "
        "connector calls, so this is sized for waiting, not for CPUs",
    )
    max_attempts: int = Field(
        4,
        ge=1,
        le=20,
        description="Runs of a job before it is given up (its last run answers with a failure "
        "message instead of failing)",
    )
    stalled_after: float = Field(
        30.0,
        ge=5,
        le=600,
        description="Seconds without a heartbeat after which a worker counts as dead and its "
        "jobs run again",
    )


class RetentionSettings(_Section):
    """How long the bot's bookkeeping is kept; a daily `pipebot clock` job prunes the rest."""

    events_days: float = Field(
        14, gt=0, le=3650, description="Days processed event ids are remembered"
    )
    jobs_days: float = Field(14, gt=0, le=3650, description="Days finished jobs are kept")
    posts_days: float = Field(14, gt=0, le=3650, description="Days sent posts are kept")
    audit_days: float = Field(
        90, gt=0, le=3650, description="Days the audit (tool and LLM calls) is kept"
    )


_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class DriftSettings(_Section):
    """Warehouse drift (docs/drift.md): `pipebot clock` has the catalog snapshotted daily and
    changes no dbt run explains posted once."""

    enabled: bool = Field(
        True, description="Snapshot the warehouse catalog daily (when a warehouse is configured)"
    )
    schemas: CommaList = Field(
        default_factory=list,
        description="Comma-separated schemas to snapshot (empty: PIPEBOT_WAREHOUSE__SCHEMAS, "
        "else every schema the warehouse role may use)",
    )
    time: str = Field("06:00", description="When the daily snapshot is taken, HH:MM")
    timezone: str = Field("UTC", description="Time zone of that time, e.g. Europe/Berlin")
    channel: str = Field(
        "",
        description="Where unexpected changes are posted: a Slack or Discord channel id "
        "(empty: PIPEBOT_ALERTS__CHANNEL)",
    )
    platform: Literal["", "slack", "discord"] = Field(
        "",
        description="Which chat that channel is in (empty: as PIPEBOT_ALERTS__PLATFORM)",
    )
    workspace: str = Field(
        "",
        description="Slack workspace (team) id of that channel; needed only with OAuth "
        "(multi-workspace) installs (empty: PIPEBOT_ALERTS__WORKSPACE)",
    )
    retention_days: float = Field(
        30, gt=0, le=3650, description="Days snapshots are kept (the newest is always kept)"
    )

    _split = field_validator("schemas", mode="before")(_comma_list)

    @field_validator("time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        match = _HH_MM.match(value.strip())
        if match is None:
            raise ValueError(f"expected a time of day as HH:MM, e.g. 06:00 (got {value!r})")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone; use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value.strip()


class SchemaReviewSettings(_Section):
    """Schema reviews posted on their own (docs/schema-review.md, "In the channel"): each
    finished run of a CI job (PIPEBOT_DBT_CLOUD__CI_JOB_IDS) reviewed against production."""

    channel: str = Field(
        "",
        description="Where the reviews of CI runs are posted: a Slack or Discord channel id "
        "(empty: PIPEBOT_ALERTS__CHANNEL)",
    )
    platform: Literal["", "slack", "discord"] = Field(
        "",
        description="Which chat that channel is in (empty: as PIPEBOT_ALERTS__PLATFORM)",
    )
    workspace: str = Field(
        "",
        description="Slack workspace (team) id of that channel; needed only with OAuth "
        "(multi-workspace) installs (empty: PIPEBOT_ALERTS__WORKSPACE)",
    )
    advice: bool = Field(
        True,
        description="With the agent configured, add its migration advice (written from the "
        "review's facts only) to a review that breaks something",
    )


class GitHubSettings(_Section):
    """GitHub, for the one pull-request comment `pipebot github comment` keeps up to date."""

    token: SecretStr | None = Field(
        None,
        description="Token that may write pull-request comments (a workflow's GITHUB_TOKEN "
        "needs `permissions: pull-requests: write`)",
    )
    api_url: str = Field(
        "https://api.github.com",
        description="GitHub's REST API; GitHub Enterprise Server: https://HOST/api/v3 (Actions "
        "sets GITHUB_API_URL)",
    )
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds to wait for each API call")

    _check_url = field_validator("api_url")(_http_url)


class Settings(BaseSettings):
    """Everything pipebot can be configured with. See ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    database_url: str = Field(
        "sqlite:///pipebot.db",
        description="The bot's own database (SQLAlchemy URL); default a SQLite file in the "
        "working directory. postgres:// URLs are accepted",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    log_format: Literal["auto", "human", "json"] = Field(
        "auto", description="auto: human-readable on a terminal, JSON lines otherwise"
    )
    port: int = Field(
        8000, ge=1, le=65535, description="Port `pipebot serve` listens on (platforms set PORT)"
    )
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    dbt_cloud: DbtCloudSettings = Field(default_factory=DbtCloudSettings)
    dbt: DbtSettings = Field(default_factory=DbtSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    owners: OwnerSettings = Field(default_factory=OwnerSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    work: WorkSettings = Field(default_factory=WorkSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    schema_review: SchemaReviewSettings = Field(default_factory=SchemaReviewSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        # Heroku-style URLs; we talk to PostgreSQL through psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                value = "postgresql+psycopg://" + value[len(prefix) :]
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "expected a database URL such as sqlite:///pipebot.db or "
                "postgresql://user:password@host:5432/pipebot"
            ) from None
        if not url.drivername:
            raise ValueError("expected a database URL with a scheme, e.g. sqlite:///pipebot.db")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _EcosystemNames(settings_cls),
            file_secret_settings,
        )

    def secrets(self) -> list[str]:
        """Every secret value configured, for the redactor."""
        found: list[str] = []
        for _, value in _walk(self):
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
        warehouse_url = self.warehouse.url
        if warehouse_url is not None:
            password = make_url(warehouse_url.get_secret_value()).password
            if password:
                found.append(str(password))
        db_password = make_url(self.database_url).password
        if db_password:
            found.append(str(db_password))
        return found


class _EcosystemNames(PydanticBaseSettingsSource):
    """Reads ``DATABASE_URL``, ``SLACK_BOT_TOKEN`` … from the environment and ``.env``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole mapping

    def __call__(self) -> dict[str, Any]:
        env_file = self.config.get("env_file")
        values: dict[str, str | None] = {}
        if isinstance(env_file, str) and Path(env_file).is_file():
            values.update(dotenv_values(env_file))
        values.update(os.environ)
        result: dict[str, Any] = {}
        for name, (section, field) in ECOSYSTEM_NAMES.items():
            value = values.get(name)
            if not value:
                continue
            if section is None:
                result[field] = value
            else:
                result.setdefault(section, {})[field] = value
        return result


def _walk(model: BaseModel, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _walk(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def env_name(path: tuple[str, ...]) -> str:
    """``("airflow", "base_url")`` → ``PIPEBOT_AIRFLOW__BASE_URL``."""
    return ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in path)


@dataclass(frozen=True, kw_only=True)
class SettingDoc:
    env: str
    default: str
    description: str
    secret: bool
    also: tuple[str, ...]


def reference() -> list[SettingDoc]:
    """Every setting with its env var, default and description (drives docs and their test)."""
    also_by_path = {
        tuple(p for p in (section, field) if p): name
        for name, (section, field) in ECOSYSTEM_NAMES.items()
    }
    docs: list[SettingDoc] = []

    def visit(model_cls: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, info in model_cls.model_fields.items():
            path = (*prefix, name)
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                visit(annotation, path)
                continue
            default = info.get_default(call_default_factory=True)
            shown = (
                ""
                if default is None
                else (",".join(default) if isinstance(default, list) else str(default))
            )
            also = (also_by_path[path],) if path in also_by_path else ()
            docs.append(
                SettingDoc(
                    env=env_name(path),
                    default=shown,
                    description=info.description or "",
                    secret="SecretStr" in str(annotation),
                    also=also,
                )
            )

    visit(Settings, ())
    return docs


def load_settings(env_file: str | None = ".env") -> Settings:
    """Read the settings once; raise `ConfigError` naming the variable on invalid input."""
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:
        # Raised before validation when an env value cannot be decoded for its field.
        raise ConfigError(f"invalid setting: {exc}") from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
        name = env_name(path) if path else "settings"
        also = [n for n, (s, f) in ECOSYSTEM_NAMES.items() if tuple(p for p in (s, f) if p) == path]
        if also:
            name += f" (or {also[0]})"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known setting; see docs/configuration.md"
        problems.append(f"{name}: {message}")
    return "invalid setting " + "; ".join(problems)
