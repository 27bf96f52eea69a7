"""Composition root and CLI: the only module that wires handlers, the core and connectors.

Settings are read once here and passed down. Nothing imports this module; it is only run
(``pipebot …`` or ``python -m bot …``).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import SecretStr

from bot import logs
from bot.access import AccessPolicy
from bot.agent import Agent, build_agent
from bot.conversation import Conversation
from bot.errors import BotError, ConfigError, StoreError
from bot.owners import OwnerDirectory
from bot.playbooks import default_commands
from bot.ports import Sources
from bot.redaction import Redactor
from bot.settings import Settings, load_settings, reference
from bot.store import Store, schema

if TYPE_CHECKING:
    from bot.work import Engine
    from handlers.server import Server

log = logging.getLogger("pipebot")


@dataclass(frozen=True)
class App:
    settings: Settings
    store: Store
    sources: Sources
    conversation: Conversation
    redactor: Redactor
    agent: Agent | None = None


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"pipebot: {message}", err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        _fail(str(exc), 2)
    logs.configure(
        level=settings.log_level,
        fmt=settings.log_format,
        redactor=Redactor.build(settings.secrets(), settings.redaction.patterns),
    )
    return settings


def _open_store(url: str) -> Store:
    try:
        return Store.open(url)
    except StoreError as exc:
        _fail(str(exc), 1)


def build_sources(settings: Settings, *, store: Store | None = None) -> Sources:
    """The connectors the settings enable; an unset section leaves its source out.

    With a `store`, the dbt project keeps its last build there (`bot.kept_runs`), so a later
    ``dbt docs generate`` does not hide it.
    """
    from bot.kept_runs import KeepsLastBuild
    from bot.tools import Toolset
    from integrations.airflow import AirflowClient, airflow_toolset
    from integrations.dbt import ArtifactsProject, CloudProject, DbtCloudClient, dbt_toolset
    from integrations.warehouse import Catalog, warehouse_toolset

    toolsets: list[Toolset] = []
    airflow = AirflowClient.from_settings(settings.airflow) if settings.airflow.enabled else None
    if airflow is not None:
        toolsets.append(airflow_toolset(airflow))
    cloud = DbtCloudClient.from_settings(settings.dbt_cloud) if settings.dbt_cloud.enabled else None
    dbt: Any = None
    if settings.dbt.artifacts_dir is not None:
        dbt = ArtifactsProject(settings.dbt.artifacts_dir)
    elif cloud is not None and settings.dbt_cloud.job_id is not None:
        dbt = CloudProject(cloud, settings.dbt_cloud.job_id)
    connector = dbt
    if dbt is not None and store is not None:
        dbt = KeepsLastBuild(dbt, store.dbt_runs, key=dbt.project_key)
    if dbt is not None or cloud is not None:
        # The toolset asks the kept project too; given the connector as `cloud` it still
        # finds the dbt Cloud project's run cache.
        toolsets.append(
            dbt_toolset(dbt, cloud=connector if isinstance(connector, CloudProject) else cloud)
        )
    # dbt Cloud runs by id (`triage dbt <run_id>`, webhooks) need no job: any run of the account.
    dbt_runs = None
    if cloud is not None:
        dbt_runs = (
            connector
            if isinstance(connector, CloudProject)
            else CloudProject(cloud, settings.dbt_cloud.job_id or 0)
        )
    warehouse = Catalog.from_settings(settings.warehouse) if settings.warehouse.enabled else None
    if warehouse is not None:
        toolsets.append(warehouse_toolset(warehouse))
    return Sources(
        airflow=airflow,
        dbt=dbt,
        dbt_runs=dbt_runs,
        warehouse=warehouse,
        toolsets=tuple(toolsets),
    )


def build_app(settings: Settings, sources: Sources, *, store: Store | None = None) -> App:
    store = store or _open_store(settings.database_url)
    redactor = Redactor.build(settings.secrets(), settings.redaction.patterns)
    agent = build_agent(settings, store, redactor) if settings.agent.enabled else None
    commands = default_commands(
        owners=OwnerDirectory.from_settings(settings.owners),
        incident_store=store.incidents,
        agent=agent,
        digest_store=store.digests,
    )
    conversation = Conversation(
        store=store,
        commands=commands,
        sources=sources,
        agent=agent,
        access=AccessPolicy.from_settings(settings.access),
    )
    return App(
        settings=settings,
        store=store,
        sources=sources,
        conversation=conversation,
        redactor=redactor,
        agent=agent,
    )


@contextmanager
def demo_app(settings: Settings) -> Iterator[App]:
    """The bundled demo environment: recorded Airflow, real dbt artifacts, a DuckDB file."""
    from integrations.demo import demo_sources

    with tempfile.TemporaryDirectory(prefix="pipebot-demo-") as tmp:
        store = _open_store(f"sqlite:///{Path(tmp) / 'demo.db'}")
        try:
            yield build_app(settings, demo_sources(), store=store)
        finally:
            store.close()


# --- CLI ---------------------------------------------------------------------------------

_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "text", "markdown", "json"]),
    default=None,
    help="Reply format (default: rich on a terminal, text otherwise).",
)


# The playbooks' shell commands (digest, schema-review): a reply, for people or for scripts.
_REPLY_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    help="json prints the reply document (docs/reply-json.md).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipebot")
def cli() -> None:
    """pipebot — a read-only data-engineering colleague for Airflow, dbt and the warehouse."""


@cli.command()
@_FORMAT
def chat(fmt: str | None) -> None:
    """Chat in the console against the configured connectors."""
    from handlers.console import ConsoleChannel

    settings = _settings()
    store = _open_store(settings.database_url)
    app = build_app(settings, build_sources(settings, store=store), store=store)
    channel = ConsoleChannel(
        app.conversation.handle,
        fmt=fmt,
        banner="pipebot — type `help`, a question, or `exit`.",
        history_file=Path.home() / ".pipebot_history",
    )
    sys.exit(channel.run())


@cli.command()
@_FORMAT
def demo(fmt: str | None) -> None:
    """Chat in the console on the bundled demo environment (no credentials needed)."""
    from handlers.console import ConsoleChannel

    settings = _settings()
    with demo_app(settings) as app:
        channel = ConsoleChannel(
            app.conversation.handle,
            fmt=fmt,
            banner=f"pipebot demo — {app.sources.label}. Try `status`, `dag orders_daily`, "
            "`lineage fct_orders`, `freshness`, or `exit`.",
        )
        code = channel.run()
    sys.exit(code)


def build_engine(settings: Settings, store: Store, *, role: str = "all") -> Engine:
    """The work engine for the store: procrastinate on PostgreSQL, the embedded one on SQLite
    (which serves one process: splitting roles needs PostgreSQL). The ``clock`` role only
    submits jobs, on either."""
    from datetime import timedelta

    from bot.work import Policy

    policy = Policy(max_attempts=settings.work.max_attempts)
    if store.backend == "postgresql":
        from bot.work.postgres import ProcrastinateEngine

        return ProcrastinateEngine(
            store,
            concurrency=settings.work.concurrency,
            policy=policy,
            stalled_after=settings.work.stalled_after,
            keep_jobs=timedelta(days=settings.retention.jobs_days),
        )
    if role in ("web", "worker"):
        raise ConfigError(
            f"--role {role} needs a PostgreSQL database shared by the processes "
            "(PIPEBOT_DATABASE_URL=postgresql://…); on SQLite one `pipebot serve` does everything"
        )
    from bot.work.local import LocalEngine

    return LocalEngine(
        store,
        concurrency=settings.work.concurrency,
        policy=policy,
        stalled_after=settings.work.stalled_after,
    )


def build_server(
    app: App, *, role: str = "all", chats: tuple[str, ...] = ("slack", "discord")
) -> Server:
    """`pipebot serve`'s process: HTTP routes, workers, and the chats the settings enable
    (of `chats`)."""
    from bot.alerts import ALERT_JOB, AlertDesk, AlertMatchers
    from bot.playbooks import digest
    from handlers import webhooks
    from handlers.deliveries import Deliveries
    from handlers.server import Server

    settings = app.settings
    server = Server(
        store=app.store,
        engine=build_engine(settings, app.store, role=role),
        role=role,
        limits=settings.server,
    )
    slack = settings.slack.enabled and "slack" in chats
    discord = settings.discord.enabled and "discord" in chats
    alert_platform = settings.alerts.platform or ("discord" if discord and not slack else "slack")
    desk = AlertDesk(
        store=app.store,
        sources=app.sources,
        settings=settings.alerts,
        owners=OwnerDirectory.from_settings(settings.owners),
        platform=alert_platform,
        agent=app.agent,
    )
    deliveries = Deliveries(
        desk=desk,
        alert_platform=alert_platform,
        alert_channel=settings.alerts.channel,
        alert_workspace=settings.alerts.workspace,
        digest=lambda payload: digest.scheduled(
            payload, sources=app.sources, store=app.store, agent=app.agent
        ),
    )
    server.add_jobs(deliveries.jobs())
    server.add_routes(
        webhooks.routes(
            submit=lambda alert: server.submit(alert.key, ALERT_JOB, alert),
            token=_secret(settings.webhooks.token),
            dbt_secret=_secret(settings.dbt_cloud.webhook_secret),
        )
    )
    if slack:
        from handlers.slack import AlertIntake, SlackChannel

        SlackChannel.build(
            settings.slack,
            handle=app.conversation.handle,
            commands=app.conversation.commands,
            store=app.store,
            server=server,
            redact=app.redactor,
            alerts=AlertIntake(
                desk=desk,
                matchers=AlertMatchers.from_settings(settings.alerts),
                settings=settings.alerts,
                deliveries=deliveries,
            ),
        ).install()
    if discord:
        from bot.names import Names
        from handlers.discord import DiscordChannel

        DiscordChannel(
            settings=settings.discord,
            handle=app.conversation.handle,
            refusal=app.conversation.refusal,
            names=Names(app.sources),
            store=app.store,
            server=server,
            redact=app.redactor,
            deliveries=deliveries,
        ).install()
    return server


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@cli.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port to listen on (default: $PORT, else 8000).",
)
@click.option(
    "--role",
    type=click.Choice(["all", "web", "worker"]),
    default="all",
    show_default=True,
    help="all: one process does everything. web: accept (HTTP, Socket Mode, the Discord "
    "gateway) and persist work; "
    "worker: run that work and deliver the posts, no HTTP. Run one web and one or more workers "
    "on one shared database when acknowledgements must stay fast under load.",
)
def serve(host: str, port: int | None, role: str) -> None:
    """HTTP server: Slack (events, OAuth install), webhooks, /healthz, /readyz, /metrics;
    Socket Mode too when an app token is set, and Discord when a bot token is set."""
    settings = _settings()
    store = _open_store(settings.database_url)
    app = build_app(settings, build_sources(settings, store=store), store=store)
    try:
        server = build_server(app, role=role)
    except BotError as exc:
        _fail(str(exc), 2)
    log.info("serving", extra={"role": role, "engine": server.engine.name})
    try:
        if role == "worker":
            server.run_worker()
        else:
            server.run(host, port or settings.port)
    except BotError as exc:
        _fail(str(exc), 2)


@cli.command()
@click.option("--demo", "use_demo", is_flag=True, help="Serve the bundled demo environment.")
def mcp(use_demo: bool) -> None:
    """Serve the read-only tools over MCP on stdin/stdout (for Claude Desktop, IDE agents)."""
    from handlers.mcp import build_server as build_mcp_server

    settings = _settings()
    redactor = Redactor.build(settings.secrets(), settings.redaction.patterns)
    with ExitStack() as stack:
        if use_demo:
            app = stack.enter_context(demo_app(settings))
        else:
            store = _open_store(settings.database_url)
            app = build_app(settings, build_sources(settings, store=store), store=store)
        server = build_mcp_server(
            app.sources.toolsets,
            redactor=redactor,
            pii_columns=settings.redaction.pii_columns,
            audit=app.store.audit,
        )
        server.run()


@cli.command()
@click.option("--dag-id", help="Triage this Airflow DAG (its newest failed run by default).")
@click.option("--run-id", help="With --dag-id: this run instead of the newest failed one.")
@click.option("--dbt-cloud-run", type=int, help="Triage this dbt Cloud run id.")
@click.option("--dbt", "local_dbt", is_flag=True, help="Triage the latest local dbt run.")
@click.option("--demo", "use_demo", is_flag=True, help="Use the bundled demo environment.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    help="json prints the facts under stable keys (see README), plus the rendered reply.",
)
def triage(
    *,
    dag_id: str | None,
    run_id: str | None,
    dbt_cloud_run: int | None,
    local_dbt: bool,
    use_demo: bool,
    fmt: str,
) -> None:
    """Triage a failed DAG run or dbt run from the shell: what broke, why, impact, owners."""
    from bot.owners import OwnerDirectory
    from bot.playbooks.triage import TriageReport, render, triage_airflow, triage_dbt
    from bot.rendering import to_dict, to_markdown, to_text

    if sum(bool(x) for x in (dag_id, dbt_cloud_run, local_dbt)) != 1:
        _fail("give exactly one of --dag-id, --dbt-cloud-run or --dbt", 2)
    if run_id and not dag_id:
        _fail("--run-id needs --dag-id", 2)
    settings = _settings()
    store = None
    if use_demo:
        from integrations.demo import demo_sources

        sources = demo_sources()
    else:
        store = _store_if_possible(settings) if (dbt_cloud_run or local_dbt) else None
        sources = build_sources(settings, store=store)
    if dag_id and sources.airflow is None:
        _fail("Airflow is not configured (set PIPEBOT_AIRFLOW__BASE_URL)", 2)
    if (dbt_cloud_run or local_dbt) and sources.dbt is None:
        _fail("dbt is not configured (PIPEBOT_DBT__ARTIFACTS_DIR or PIPEBOT_DBT_CLOUD__*)", 2)
    try:
        if dag_id:
            result = triage_airflow(sources, dag_id=dag_id, run_id=run_id)
        else:
            result = triage_dbt(sources, run_id=str(dbt_cloud_run) if dbt_cloud_run else None)
    finally:
        if store is not None:
            store.close()
    if isinstance(result, TriageReport):
        reply = render(result, platform="cli", owners=OwnerDirectory.from_settings(settings.owners))
    else:
        reply = result
    if fmt == "json":
        import json

        body = result.to_dict() if isinstance(result, TriageReport) else {"schema": "none"}
        click.echo(json.dumps({**body, "reply": to_dict(reply)}, ensure_ascii=False, indent=2))
    else:
        click.echo(to_markdown(reply) if fmt == "markdown" else to_text(reply), nl=False)
    sys.exit(0 if isinstance(result, TriageReport) else 1)


@cli.command()
@click.option(
    "--sync-interval",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds between re-reading the digest schedules from the database.",
)
def clock(*, sync_interval: float) -> None:
    """The one scheduler process: fires the scheduled digests (`digest schedule …` in chat).

    It only submits jobs to the bot's database; `pipebot serve` workers build and post them.
    Run exactly one (a second one by mistake still posts nothing twice).
    """
    from datetime import timedelta

    from bot.store.retention import Windows
    from handlers.clock import Clock

    settings = _settings()
    store = _open_store(settings.database_url)
    engine = build_engine(settings, store, role="clock")
    retention = settings.retention
    windows = Windows(
        events=timedelta(days=retention.events_days),
        jobs=timedelta(days=retention.jobs_days),
        posts=timedelta(days=retention.posts_days),
        audit=timedelta(days=retention.audit_days),
    )
    try:
        code = Clock(
            store, submit=engine.submit, sync_interval=sync_interval, retention=windows
        ).run()
    finally:
        store.close()
    sys.exit(code)


@cli.command()
@click.argument("window", required=False)
@click.option("--demo", "use_demo", is_flag=True, help="Use the bundled demo environment.")
@_REPLY_FORMAT
def digest(*, window: str | None, use_demo: bool, fmt: str) -> None:
    """Pipeline health over WINDOW (default 24h; e.g. 7d): failing, recovered and green DAGs,
    the last dbt run, stale sources, incidents. Exit 2 on a bad window."""
    from bot.playbooks import digest as playbook

    if window is not None and playbook.parse_window(window) is None:
        _fail(f"{window!r} is not a window: use e.g. 90m, 24h, 7d or 2w (up to 31 days)", 2)
    settings = _settings()
    store = _open_store(settings.database_url) if not use_demo else None
    sources = _cli_sources(settings, use_demo=use_demo, store=store)
    try:
        reply = playbook.run(
            _cli_request(sources, "digest", (window,) if window else ()),
            store.incidents if store is not None else None,
        )
    finally:
        if store is not None:
            store.close()
    _print_reply(reply, fmt)


@cli.command("schema-review")
@click.argument("model")
@click.option("--demo", "use_demo", is_flag=True, help="Use the bundled demo environment.")
@_REPLY_FORMAT
def schema_review(*, model: str, use_demo: bool, fmt: str) -> None:
    """Review MODEL's columns in the warehouse against its dbt declaration and last build.

    Exit 1 when the change is breaking (declared columns missing, dropped columns a model
    downstream selects, types changed), so a CI step can stop a deploy; 2 when the model cannot
    be reviewed (not found, not built, or only a catalog.json older than the last build).
    """
    from bot.playbooks import schema_review as playbook

    settings = _settings()
    sources = _cli_sources(settings, use_demo=use_demo)
    if sources.dbt is None:
        _fail("dbt is not configured (PIPEBOT_DBT__ARTIFACTS_DIR or PIPEBOT_DBT_CLOUD__*)", 2)
    request = _cli_request(sources, "schema-review", (model,))
    result = playbook.assess(request)
    if isinstance(result, playbook.SchemaReview):
        _print_reply(playbook.render(result, request=request), fmt)
        sys.exit(result.exit_code)
    _print_reply(result, fmt)
    sys.exit(2)


def _cli_sources(settings: Settings, *, use_demo: bool, store: Store | None = None) -> Sources:
    if use_demo:
        from integrations.demo import demo_sources

        return demo_sources()
    return build_sources(settings, store=store)


def _store_if_possible(settings: Settings) -> Store | None:
    """The store for a one-shot command that can do without it (it only adds the dbt build
    pipebot kept); a store that cannot be opened is logged, not fatal."""
    try:
        return Store.open(settings.database_url)
    except StoreError as exc:
        log.warning("without the bot database (%s): no kept dbt build to fall back on", exc)
        return None


def _cli_request(sources: Sources, command: str, args: tuple[str, ...]) -> Any:
    from bot.commands import Request
    from bot.messages import InboundMessage, no_progress

    text = " ".join((command, *args))
    message = InboundMessage(
        platform="cli",
        workspace="local",
        channel="cli",
        thread="",
        user="cli",
        text=text,
        event_id=f"cli:{text}",
    )
    return Request(message=message, args=args, sources=sources, progress=no_progress)


def _print_reply(reply: Any, fmt: str) -> None:
    from bot.rendering import to_json, to_markdown, to_text

    if fmt == "json":
        click.echo(to_json(reply))
    else:
        click.echo(to_markdown(reply) if fmt == "markdown" else to_text(reply), nl=False)


@cli.group()
def db() -> None:
    """The bot's own database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to the newest schema."""
    settings = _settings()
    store = _open_store(settings.database_url)  # opening migrates
    click.echo(
        f"database {store.describe()} is at revision {schema.current_revision(store.engine)}"
    )


@db.command("current")
def db_current() -> None:
    """Show the schema revision of the database without changing it."""
    settings = _settings()
    store = Store.open(settings.database_url, upgrade=False)
    current = schema.current_revision(store.engine)
    head = schema.head_revision(store.engine)
    state = (
        "up to date" if current == head else f"behind (newest is {head}; run `pipebot db upgrade`)"
    )
    click.echo(f"database {store.describe()} is at revision {current or 'none'}: {state}")


@cli.command()
def doctor() -> None:
    """Check settings and each configured connector (reachable, authenticated, can read)."""
    from handlers.console import print_checks

    settings = _settings()
    sources = build_sources(settings)
    checks = sources.checks()
    if settings.discord.enabled:
        from bot.tools import Check
        from handlers.discord.app import run_check

        ok, detail = run_check(settings.discord)
        checks.append(
            Check(system="Discord", ok=ok, detail=detail, target=settings.discord.api_url or "")
        )
    store_ok = True
    try:
        store = Store.open(settings.database_url)
        store_detail = f"{store.describe()} at revision {schema.current_revision(store.engine)}"
    except (StoreError, BotError) as exc:
        store_ok, store_detail = False, str(exc)
    ok = print_checks(checks, store=(store_ok, store_detail), agent=settings.agent.enabled)
    sys.exit(0 if ok else 1)


@cli.group("discord")
def discord_group() -> None:
    """Discord: register the app commands, run the gateway alone, the invite link."""


@discord_group.command("sync")
@click.option(
    "--guild",
    type=int,
    default=None,
    help="Register in this server only (instant; for trying out). Default: globally.",
)
def discord_sync(guild: int | None) -> None:
    """Register the /pipebot commands with Discord (an explicit step: Discord allows 200
    command creations a day per server, so `serve` never does it)."""
    import asyncio

    from bot.names import Names
    from bot.ports import Sources
    from handlers.discord import invite_url, sync

    settings = _settings()
    if not settings.discord.enabled:
        _fail("Discord is not configured: set PIPEBOT_DISCORD__TOKEN (or DISCORD_TOKEN)", 2)
    try:
        count, application = asyncio.run(sync(settings.discord, Names(Sources()), guild=guild))
    except BotError as exc:
        _fail(str(exc), 1)
    where = f"in server {guild} (available now)" if guild else "globally (may take up to an hour)"
    click.echo(f"synced {count} command group(s) {where}; application {application}")
    click.echo(f"invite link: {invite_url(application)}")


@discord_group.command("invite")
@click.argument("application_id", type=int)
def discord_invite(application_id: int) -> None:
    """Print the link that adds pipebot to a server, with the scopes and permissions it needs
    (APPLICATION_ID: the Developer Portal's General Information page)."""
    from handlers.discord import invite_url

    click.echo(invite_url(application_id))


@discord_group.command("run")
def discord_run() -> None:
    """Run Discord alone: the gateway and the workers that answer, no HTTP server."""
    settings = _settings()
    if not settings.discord.enabled:
        _fail("Discord is not configured: set PIPEBOT_DISCORD__TOKEN (or DISCORD_TOKEN)", 2)
    store = _open_store(settings.database_url)
    app = build_app(settings, build_sources(settings, store=store), store=store)
    try:
        server = build_server(app, role="all", chats=("discord",))
        server.run_worker()
    except BotError as exc:
        _fail(str(exc), 2)


@cli.command("config")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "env"]),
    default="markdown",
    help="markdown: the reference table; env: a commented .env template.",
)
def config_reference(fmt: str) -> None:
    """Print every setting with its environment variable, default and meaning."""
    if fmt == "env":
        click.echo("# pipebot settings — copy to .env and fill in what you use. Every variable is")
        click.echo("# optional; an unset section disables its connector. See docs/configuration.md")
        section = None
        for doc in reference():
            name = doc.env.removeprefix("PIPEBOT_")
            current = name.split("__")[0].lower() if "__" in name else "general"
            if current != section:
                click.echo(f"\n# --- {current} ---")
                section = current
            also = f" (or {', '.join(doc.also)})" if doc.also else ""
            click.echo(f"# {doc.description}{also}")
            click.echo(f"# {doc.env}={doc.default}")
        return
    click.echo("| Environment variable | Also accepted | Default | Secret | Meaning |")
    click.echo("|---|---|---|---|---|")
    for doc in reference():
        default = f"`{doc.default}`" if doc.default else ""
        also = ", ".join(f"`{a}`" for a in doc.also)
        secret = "yes" if doc.secret else ""
        click.echo(f"| `{doc.env}` | {also} | {default} | {secret} | {doc.description} |")


def main() -> None:
    cli(prog_name="pipebot")


if __name__ == "__main__":
    main()
