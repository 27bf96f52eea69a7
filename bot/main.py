"""The `pipebot` command line.

Every command imports what it uses when it runs, so ``pipebot --help`` and ``--version`` cost
little more than click and the settings (`bench/bench_cli_startup.py`); what wires the parts
together is `bot.compose`. The shell speaks the chat grammar too: ``pipebot status``,
``pipebot dag orders_daily``, ``pipebot triage orders_daily`` (the flags still work).

Exit codes, the same for every command: **0** fine; **1** a finding or a failed check (a
failing DAG, a breaking schema change, a check `doctor` could not pass); **2** a usage or
configuration error (a bad option, a setting missing or invalid, nothing configured).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from bot.compose import App
    from bot.messages import Reply
    from bot.ports import Sources
    from bot.settings import Settings
    from bot.store import Store

log = logging.getLogger("pipebot")

OK, FINDING, USAGE = 0, 1, 2
# Chat commands the shell runs through the core as typed (those with a shell command of their
# own — triage, digest, schema-review — accept the same words there).
CHAT_COMMANDS = ("status", "dag", "runs", "lineage", "freshness", "incidents", "incident", "ask")
# Libraries that log their own retries and warnings; the command reports the outcome instead.
_NOISY = ("urllib3", "httpx", "httpcore", "anthropic", "discord", "slack_sdk", "asyncio")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"pipebot: {message}", err=True)
    sys.exit(code)


def _settings() -> Settings:
    """The settings, read once; logging set up from them (library chatter kept out of a
    command's output)."""
    from bot import logs
    from bot.errors import ConfigError
    from bot.redaction import Redactor
    from bot.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        _fail(str(exc), USAGE)
    logs.configure(
        level=settings.log_level,
        fmt=settings.log_format,
        redactor=Redactor.build(settings.secrets(), settings.redaction.patterns),
    )
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.ERROR, logging.getLogger(name).level))
    return settings


def _open_store(url: str) -> Store:
    from bot.errors import StoreError
    from bot.store import Store

    try:
        return Store.open(url)
    except StoreError as exc:
        _fail(str(exc), FINDING)


def _compose() -> Any:
    import bot.compose

    return bot.compose


def _sources(settings: Settings, *, store: Store | None = None) -> Sources:
    """The configured connectors; a setting a connector refuses (a warehouse URL it has no
    driver for …) is a configuration error."""
    from bot.errors import BotError

    try:
        sources: Sources = _compose().build_sources(settings, store=store)
    except BotError as exc:
        _fail(str(exc), USAGE)
    return sources


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


class _Shell(click.Group):
    """The commands below, plus the chat commands as typed in chat (`CHAT_COMMANDS`)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in CHAT_COMMANDS:
            return _chat_command(cmd_name)
        return found

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(
            "Chat commands work here too: "
            + ", ".join(f"pipebot {name}" for name in CHAT_COMMANDS)
            + " (e.g. `pipebot dag orders_daily --demo`). Exit codes: 0 fine, 1 a finding or "
            "a failed check, 2 a usage or configuration error."
        )


@click.group(cls=_Shell, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipebot")
def cli() -> None:
    """pipebot — a read-only data-engineering colleague for Airflow, dbt and the warehouse."""


def _chat_command(name: str) -> click.Command:
    @click.command(name=name, help=f"The chat command `{name}`, answered here (see `help`).")
    @click.argument("args", nargs=-1)
    @click.option("--demo", "use_demo", is_flag=True, help="Use the bundled demo environment.")
    @_REPLY_FORMAT
    def run(args: tuple[str, ...], use_demo: bool, fmt: str) -> None:
        sys.exit(_answer(name, args, use_demo=use_demo, fmt=fmt))

    return run


def _answer(name: str, args: tuple[str, ...], *, use_demo: bool, fmt: str) -> int:
    """Run one chat command through the core, print the reply; its exit code."""
    import uuid
    from contextlib import ExitStack

    from bot.messages import InboundMessage

    settings = _settings()
    with ExitStack() as stack:
        if use_demo:
            app: App = stack.enter_context(_compose().demo_app(settings))
        else:
            store = _open_store(settings.database_url)
            stack.callback(store.close)
            app = _compose().build_app(settings, _sources(settings, store=store), store=store)
        command = app.conversation.commands.get(name)
        missing = app.sources.missing(command.needs(args)) if command is not None else None
        if missing is not None:
            _fail(f"{missing} (or try --demo)", USAGE)
        if name == "ask" and app.agent is None:
            _fail("the agent is not configured: set ANTHROPIC_API_KEY", USAGE)
        line = " ".join((name, *args))
        message = InboundMessage(
            platform="cli",
            workspace="local",
            channel="cli",
            thread=f"cli:{uuid.uuid4().hex}",
            user="cli",
            text=line,
            event_id=f"cli:{uuid.uuid4().hex}",
        )
        reply = app.conversation.handle(message)
    _print_reply(reply, fmt)
    return exit_code(reply)


def exit_code(reply: Reply) -> int:
    """A reply's exit code: 1 when it reports something failing, else 0."""
    from bot.messages import Tone

    return FINDING if reply.tone is Tone.ERROR else OK


@cli.command()
@_FORMAT
def chat(fmt: str | None) -> None:
    """Chat in the console against the configured connectors."""
    from pathlib import Path

    from handlers.console import ConsoleChannel

    settings = _settings()
    store = _open_store(settings.database_url)
    app = _compose().build_app(settings, _sources(settings, store=store), store=store)
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
    with _compose().demo_app(settings) as app:
        channel = ConsoleChannel(
            app.conversation.handle,
            fmt=fmt,
            banner=f"pipebot demo — {app.sources.label}. Try `status`, `dag orders_daily`, "
            "`lineage fct_orders`, `freshness`, or `exit`.",
        )
        code = channel.run()
    sys.exit(code)


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
    from bot.errors import BotError
    from bot.variables import unknown

    settings = _settings()
    for problem in unknown():
        log.warning("%s", problem)
    store = _open_store(settings.database_url)
    app = _compose().build_app(settings, _sources(settings, store=store), store=store)
    try:
        server = _compose().build_server(app, role=role)
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
    from contextlib import ExitStack

    from bot.redaction import Redactor
    from handlers.mcp import build_server as build_mcp_server

    settings = _settings()
    redactor = Redactor.build(settings.secrets(), settings.redaction.patterns)
    with ExitStack() as stack:
        if use_demo:
            app = stack.enter_context(_compose().demo_app(settings))
        else:
            store = _open_store(settings.database_url)
            app = _compose().build_app(settings, _sources(settings, store=store), store=store)
        server = build_mcp_server(
            app.sources.toolsets,
            redactor=redactor,
            pii_columns=settings.redaction.pii_columns,
            audit=app.store.audit,
        )
        server.run()


@cli.command()
@click.argument("words", nargs=-1)
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
    words: tuple[str, ...],
    dag_id: str | None,
    run_id: str | None,
    dbt_cloud_run: int | None,
    local_dbt: bool,
    use_demo: bool,
    fmt: str,
) -> None:
    """Triage a failed DAG run or dbt run: what broke, why, impact, owners.

    As in chat: `pipebot triage DAG_ID [RUN_ID]`, `pipebot triage dbt [RUN_ID]`; or with the
    flags below. Exit 1 when there is a failure to report, 2 on a usage or configuration error.
    """
    from bot.owners import OwnerDirectory
    from bot.playbooks.triage import TriageReport, render, triage_airflow, triage_dbt
    from bot.rendering import to_dict, to_markdown, to_text

    if words:
        if dag_id or dbt_cloud_run or local_dbt or run_id or len(words) > 2:
            _fail("give `triage DAG_ID [RUN_ID]`, `triage dbt [RUN_ID]` or the flags, not both", 2)
        if words[0].lower() == "dbt":
            if len(words) == 2 and not words[1].isdigit():
                _fail(f"{words[1]!r} is not a dbt Cloud run id (a number)", 2)
            dbt_cloud_run = int(words[1]) if len(words) == 2 else None
            local_dbt = dbt_cloud_run is None
        else:
            dag_id, run_id = words[0], words[1] if len(words) == 2 else None
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
        sources = _sources(settings, store=store)
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
    """The one scheduler process: fires the scheduled digests (`digest schedule …` in chat)
    and, with a warehouse, the daily drift snapshot (PIPEBOT_DRIFT__TIME).

    It only submits jobs to the bot's database; `pipebot serve` workers build and post them.
    Run exactly one (a second one by mistake still posts nothing twice).
    """
    from datetime import timedelta

    from bot.store.retention import Windows
    from handlers.clock import Clock, DriftSchedule

    settings = _settings()
    store = _open_store(settings.database_url)
    engine = _compose().build_engine(settings, store, role="clock")
    retention = settings.retention
    windows = Windows(
        events=timedelta(days=retention.events_days),
        jobs=timedelta(days=retention.jobs_days),
        posts=timedelta(days=retention.posts_days),
        audit=timedelta(days=retention.audit_days),
        drift=timedelta(days=settings.drift.retention_days),
    )
    # The daily drift snapshot needs a warehouse (the workers read it; the clock does not).
    drift = (
        DriftSchedule(time=settings.drift.time, timezone=settings.drift.timezone)
        if settings.drift.enabled and settings.warehouse.enabled
        else None
    )
    try:
        code = Clock(
            store,
            submit=engine.submit,
            sync_interval=sync_interval,
            retention=windows,
            drift=drift,
        ).run()
    finally:
        store.close()
    sys.exit(code)


@cli.command()
@click.argument("window", required=False)
@click.option("--demo", "use_demo", is_flag=True, help="Use the bundled demo environment.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    help="json prints the digest as data (schema pipebot.digest/1, docs/digest.md).",
)
@click.option(
    "--exit-code",
    "exit_code",
    is_flag=True,
    help="Exit 1 when something is failing (for cron and CI); without it the digest exits 0.",
)
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also draw the last 14 days as a PNG to this path (and print the path).",
)
@click.option("--tag", "tags", multiple=True, help="Only DAGs with this tag (repeatable).")
@click.option("--owner", "owners", multiple=True, help="Only DAGs of this owner (repeatable).")
@click.option(
    "--select", "selects", multiple=True, help="dbt selector, e.g. tag:finance (repeatable)."
)
def digest(
    *,
    window: str | None,
    use_demo: bool,
    fmt: str,
    exit_code: bool,
    chart_path: str | None,
    tags: tuple[str, ...],
    owners: tuple[str, ...],
    selects: tuple[str, ...],
) -> None:
    """Pipeline health over WINDOW (default 24h; e.g. 7d): failing (new or still), recovered
    and slower DAGs against the window before, the last dbt run's failing tests by model, stale
    sources and tables, incidents. Exit 2 on a bad window or filter or with nothing configured;
    with --exit-code, 1 when something is failing."""
    from pathlib import Path

    from bot.health.chart import ChartUnavailable, draw
    from bot.health.document import to_json
    from bot.health.selection import FilterError, Filters, check_selector
    from bot.playbooks import digest as playbook
    from bot.rendering import to_markdown, to_text

    if window is not None and playbook.parse_window(window) is None:
        _fail(f"{window!r} is not a window: use e.g. 90m, 24h, 7d or 2w (up to 31 days)", 2)
    try:
        for selector in selects:
            check_selector(selector)
    except FilterError as exc:
        _fail(str(exc), USAGE)
    filters = Filters(tags=tags, owners=owners, select=selects)
    settings = _settings()
    store = _open_store(settings.database_url) if not use_demo else None
    sources = _cli_sources(settings, use_demo=use_demo, store=store)
    missing = sources.missing(("any",))
    if missing is not None:
        _fail(f"{missing} (or try --demo)", USAGE)
    request = _cli_request(sources, "digest", (window,) if window else ())
    try:
        report = playbook.report_for(
            request,
            (playbook.parse_window(window) if window else None) or playbook.DEFAULT_WINDOW,
            filters,
            incidents=store.incidents if store is not None else None,
        )
    finally:
        if store is not None:
            store.close()
    chart = None
    chart_missing = ""
    if chart_path is not None:
        try:
            chart = draw(report, Path(chart_path).resolve())
        except ChartUnavailable as exc:
            chart_missing = str(exc)
    if fmt == "json":
        click.echo(to_json(report, chart=chart.as_dict() if chart else None))
    else:
        reply = playbook.render(report, chart=chart, chart_missing=chart_missing)
        click.echo(to_markdown(reply) if fmt == "markdown" else to_text(reply), nl=False)
    if chart is not None:
        click.echo(f"Chart: {chart.path}", err=fmt == "json")
    elif chart_missing:
        click.echo(f"pipebot: no chart: {chart_missing}", err=True)
    sys.exit(playbook.exit_code(report) if exit_code else OK)


@cli.command("schema-review")
@click.argument("words", nargs=-1)
@click.option("--base", "base_dir", metavar="DIR", help="Base state: a dbt target/ folder.")
@click.option("--base-run", type=int, metavar="ID", help="Base state: a dbt Cloud run.")
@click.option("--target", "target_dir", metavar="DIR", help="Target state: a dbt target/ folder.")
@click.option("--target-run", type=int, metavar="ID", help="Target state: a dbt Cloud run.")
@click.option(
    "--select",
    "selector",
    default="",
    metavar="SELECTOR",
    help="Review only these nodes (dbt syntax: names, tag:, path:, +graph+ …).",
)
@click.option("--demo", "use_demo", is_flag=True, help="Use the bundled demo environment.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "github"]),
    default="text",
    help="json: the review as pipebot.schema_review/1 (docs/schema-review.md) — for one model, "
    "the reply document; github: a pull-request comment.",
)
def schema_review(
    *,
    words: tuple[str, ...],
    base_dir: str | None,
    base_run: int | None,
    target_dir: str | None,
    target_run: int | None,
    selector: str,
    use_demo: bool,
    fmt: str,
) -> None:
    """Review a change between two dbt states, or one model against the warehouse.

    \b
    A change: --base DIR|--base-run ID (default: production, the latest run of
    PIPEBOT_DBT_CLOUD__JOB_ID) and --target DIR|--target-run ID; or as in chat,
    `schema-review RUN_ID` (against production) and `schema-review BASE TARGET`.
    Exit 0 safe, 1 breaking, 2 cannot review (a state missing or unreadable, no
    catalog.json on a side).

    \b
    One model: `schema-review MODEL` — its columns in the warehouse against its
    dbt declaration and last build. Exit 1 when breaking, 2 when it cannot be
    reviewed.
    """
    from bot.playbooks import change_review

    options = (base_dir, base_run, target_dir, target_run)
    if any(o is not None for o in options) or change_review.is_change(words):
        sys.exit(_review_change(words, options, selector=selector, use_demo=use_demo, fmt=fmt))
    if len(words) != 1:
        _fail("give a MODEL, a dbt Cloud run id, or --base/--target (see --help)", USAGE)
    if fmt == "github" or selector:
        _fail("--format github and --select are for the review of a change (--target …)", USAGE)
    from bot.playbooks import schema_review as playbook

    settings = _settings()
    sources = _cli_sources(settings, use_demo=use_demo)
    if sources.dbt is None:
        _fail("dbt is not configured (PIPEBOT_DBT__ARTIFACTS_DIR or PIPEBOT_DBT_CLOUD__*)", 2)
    request = _cli_request(sources, "schema-review", words)
    result = playbook.assess(request)
    if isinstance(result, playbook.SchemaReview):
        _print_reply(playbook.render(result, request=request), fmt)
        sys.exit(result.exit_code)
    _print_reply(result, fmt)
    sys.exit(2)


def _review_change(
    words: tuple[str, ...],
    options: tuple[str | None, int | None, str | None, int | None],
    *,
    selector: str,
    use_demo: bool,
    fmt: str,
) -> int:
    """`schema-review` of a change: the states from the words or the options; the exit code."""
    from bot.facts import StateRef
    from bot.playbooks import change_review
    from bot.ports import Sources

    base_dir, base_run, target_dir, target_run = options
    if use_demo:
        _fail("--demo has no second state to compare: review a change with --base/--target", 2)
    if words and any(o is not None for o in options):
        _fail("give the states as words or as --base/--target options, not both", USAGE)
    if words:
        found = change_review.refs(words)
        if isinstance(found, str):
            _fail(found.replace("`", "'"), USAGE)
        base, target = found
    else:
        if base_dir is not None and base_run is not None:
            _fail("give --base DIR or --base-run ID, not both", USAGE)
        if target_dir is not None and target_run is not None:
            _fail("give --target DIR or --target-run ID, not both", USAGE)
        if target_dir is None and target_run is None:
            _fail("give the state to review: --target DIR or --target-run ID", USAGE)
        base = (
            StateRef(kind="dir", value=base_dir)
            if base_dir is not None
            else StateRef(kind="run", value=str(base_run))
            if base_run is not None
            else StateRef(kind="production")
        )
        target = (
            StateRef(kind="dir", value=target_dir)
            if target_dir is not None
            else StateRef(kind="run", value=str(target_run))
        )
    settings = _settings()
    # Only the states are needed: no warehouse or Airflow connection is opened.
    states = _compose().build_states(settings, anywhere=True)
    review = change_review.assess(Sources(dbt_states=states), base, target, selector=selector)
    if fmt == "json":
        from bot.review.document import to_json

        click.echo(to_json(review))
    elif fmt == "github":
        from bot.owners import OwnerDirectory
        from bot.review.github import to_github, unmapped

        directory = OwnerDirectory.from_settings(settings.owners)

        def mention(owner: str) -> str:
            # Only a configured login is pinged (PIPEBOT_OWNERS__GITHUB).
            login = directory.github_login(owner)
            return f"@{login}" if login else unmapped(owner)

        click.echo(to_github(review, mention=mention), nl=False)
    else:
        from bot.owners import OwnerDirectory
        from bot.review.reply import to_reply

        reply = to_reply(review, platform="cli", owners=OwnerDirectory())
        _print_reply(reply, fmt)
    if review.target is None or review.base is None:
        # A state could not be loaded: say so where a CI log shows it, whatever the format.
        click.echo(f"pipebot: cannot review: {review.reason}", err=True)
    return review.exit_code


@cli.group("github")
def github_group() -> None:
    """GitHub: the one pull-request comment a CI step keeps up to date."""


@github_group.command("comment")
@click.option(
    "--repo",
    envvar="GITHUB_REPOSITORY",
    required=True,
    metavar="OWNER/NAME",
    help="The repository (default: $GITHUB_REPOSITORY, which Actions sets).",
)
@click.option("--pr", "number", type=click.IntRange(min=1), required=True, help="PR number.")
@click.option(
    "--file",
    "source",
    type=click.File("r", encoding="utf-8"),
    required=True,
    metavar="PATH",
    help="The comment's Markdown, e.g. the output of `schema-review --format github` (- = stdin).",
)
@click.option(
    "--marker",
    default="pipebot:schema-review",
    show_default=True,
    help="Hidden marker naming the comment: one comment per marker is kept.",
)
def github_comment(*, repo: str, number: int, source: Any, marker: str) -> None:
    """Add the comment to pull request --pr, or update the one added before.

    \b
    The comment carries a hidden marker (<!-- pipebot:schema-review -->); the one
    that starts with it is edited on every push instead of adding another. Needs
    GITHUB_TOKEN with `pull-requests: write`; GITHUB_API_URL for GitHub Enterprise
    Server (Actions sets it). Exit 1 when GitHub refuses or cannot be reached, 2 on
    a usage or configuration error.
    """
    from bot.errors import SourceError
    from integrations.github import GitHubClient, upsert
    from integrations.github.comment import marker_comment

    body = source.read()
    if not body.strip():
        _fail("the comment is empty: give the Markdown to post with --file", USAGE)
    try:
        marker_comment(marker)
    except ValueError as exc:
        _fail(str(exc), USAGE)
    settings = _settings()
    github = settings.github
    if github.token is None:
        _fail("no GitHub token: set GITHUB_TOKEN (or PIPEBOT_GITHUB__TOKEN)", USAGE)
    try:
        client = GitHubClient(
            api_url=github.api_url, token=github.token.get_secret_value(), timeout=github.timeout
        )
    except ValueError as exc:
        _fail(f"PIPEBOT_GITHUB__API_URL (or GITHUB_API_URL): {exc}", USAGE)
    try:
        done = upsert(client, repo, number, body, marker=marker)
    except ValueError as exc:
        _fail(str(exc), USAGE)
    except SourceError as exc:
        _fail(str(exc), FINDING)
    finally:
        client.close()
    click.echo(f"{done.action} {done.comment.url or f'comment {done.comment.id}'}")
    if done.others:
        click.echo(
            f"pipebot: {done.others} more comment(s) on {repo}#{number} carry the same marker; "
            "only the first was updated",
            err=True,
        )


@cli.command("drift")
@click.argument("words", nargs=-1)
@click.option(
    "--no-post",
    is_flag=True,
    help="With `snapshot`: do not have the unexpected changes posted to the drift channel.",
)
@_REPLY_FORMAT
def drift_command(*, words: tuple[str, ...], no_post: bool, fmt: str) -> None:
    """Warehouse drift (docs/drift.md). `pipebot drift [SCHEMA]`: what changed in the catalog
    since the newest snapshot, and how old it is. `pipebot drift snapshot`: take a snapshot now
    and show what changed since the one before; unexpected changes are posted to the drift
    channel by the `serve` workers (unless --no-post), once, as the daily check's are.

    Exit 1 when there are changes no dbt run explains (or the catalog cannot be read), 2 on a
    usage or configuration error.
    """
    from bot.drift import DRIFT_JOB, DriftJob, DriftReport, DriftWatch, latest
    from bot.errors import SourceError
    from bot.playbooks import drift as playbook

    snapshot = bool(words) and words[0].lower() == "snapshot"
    if snapshot and len(words) > 1:
        _fail("`pipebot drift snapshot` takes no argument (PIPEBOT_DRIFT__SCHEMAS says what)", 2)
    if no_post and not snapshot:
        _fail("--no-post goes with `pipebot drift snapshot`", 2)
    if len(words) > 1:
        _fail(f"give at most one schema: {playbook.USAGE}", 2)
    settings = _settings()
    store = _open_store(settings.database_url)
    try:
        sources = _sources(settings, store=store)
        if sources.warehouse is None:
            _fail("the warehouse is not configured: set PIPEBOT_WAREHOUSE__URL", USAGE)
        if not snapshot:
            result = playbook.assess(_cli_request(sources, "drift", words), store.drift)
            if isinstance(result, DriftReport):
                _print_reply(playbook.render(result, last_check=latest(store.drift)), fmt)
                sys.exit(FINDING if result.unexpected else OK)
            _print_reply(result, fmt)
            sys.exit(exit_code(result))
        import uuid

        job = DriftJob(snapshot=f"manual:{uuid.uuid4().hex}")
        watch = DriftWatch(
            store, sources, schemas=settings.drift.schemas or settings.warehouse.schemas
        )
        try:
            report = watch.check(job.snapshot)
        except SourceError as exc:
            _fail(f"no snapshot taken: {exc}", FINDING)
        if report.unexpected and not no_post:
            # The workers post it, from the decision just stored (as the daily check's).
            _compose().build_engine(settings, store, role="clock").submit(job.key, DRIFT_JOB, job)
        _print_reply(playbook.render(report), fmt)
        sys.exit(FINDING if report.unexpected else OK)
    finally:
        store.close()


def _cli_sources(settings: Settings, *, use_demo: bool, store: Store | None = None) -> Sources:
    if use_demo:
        from integrations.demo import demo_sources

        return demo_sources()
    return _sources(settings, store=store)


def _store_if_possible(settings: Settings) -> Store | None:
    """The store for a one-shot command that can do without it (it only adds the dbt build
    pipebot kept); a store that cannot be opened is logged, not fatal."""
    from bot.errors import StoreError
    from bot.store import Store

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


@cli.command()
@click.argument("window", required=False)
@click.option("--demo", "use_demo", is_flag=True, help="Use the bundled demo environment.")
@_REPLY_FORMAT
def costs(*, window: str | None, use_demo: bool, fmt: str) -> None:
    """Warehouse spend over WINDOW (24h by default; 7d, 2w …) against the window before, the
    warehouses that moved, the slowest, costliest and failing queries.

    Exit 1 when spend rose by half or more or could not be read; 2 on a bad window or a
    warehouse without usage views (docs/warehouses.md)."""
    from bot.playbooks import costs as playbook

    if window is not None and playbook.parse_window(window) is None:
        _fail(f"{window!r} is not a window: use e.g. 24h, 7d or 2w (up to 31 days)", USAGE)
    settings = _settings()
    sources = _cli_sources(settings, use_demo=use_demo)
    missing = sources.missing(("warehouse", "usage"))
    if missing is not None:
        _fail(missing, USAGE)
    reply = playbook.run(_cli_request(sources, "costs", (window,) if window else ()))
    _print_reply(reply, fmt)
    sys.exit(exit_code(reply))


@cli.group()
def db() -> None:
    """The bot's own database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to the newest schema."""
    from bot.store import schema

    settings = _settings()
    store = _open_store(settings.database_url)  # opening migrates
    click.echo(
        f"database {store.describe()} is at revision {schema.current_revision(store.engine)}"
    )


@db.command("current")
def db_current() -> None:
    """Show the schema revision of the database without changing it."""
    from bot.store import Store, schema

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
    """Check the settings, the bot database, each configured connector and chat, and the
    agent's API key: reachable, authenticated, can read. Exit 1 when a check fails, 2 when
    nothing is configured."""
    from bot.errors import BotError, StoreError
    from bot.store import Store, schema
    from bot.tools import Check
    from bot.variables import unknown
    from handlers.console import print_checks

    settings = _settings()
    checks = [Check(system="settings", ok=False, detail=str(problem)) for problem in unknown()]
    sources = _sources(settings)
    checks += sources.checks()
    if settings.slack.enabled:
        from handlers.slack.clients import check as slack_check

        ok, detail = slack_check(settings.slack)
        checks.append(
            Check(system="Slack", ok=ok, detail=detail, target=settings.slack.api_url or "")
        )
    if settings.discord.enabled:
        from handlers.discord.app import run_check

        ok, detail = run_check(settings.discord)
        checks.append(
            Check(system="Discord", ok=ok, detail=detail, target=settings.discord.api_url or "")
        )
    if settings.agent.enabled:
        from bot.agent import check as agent_check

        ok, detail = agent_check(settings.agent)
        checks.append(Check(system="agent", ok=ok, detail=detail, target=settings.agent.model))
    try:
        store = Store.open(settings.database_url)
        store_check = (
            True,
            f"{store.describe()} at revision {schema.current_revision(store.engine)}",
        )
    except (StoreError, BotError) as exc:
        store_check = (False, str(exc))
    nothing = not (sources.configured() or settings.slack.enabled or settings.discord.enabled)
    ok = print_checks(checks, store=store_check, nothing_configured=nothing)
    if nothing:
        sys.exit(USAGE)
    sys.exit(OK if ok else FINDING)


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

    from bot.errors import BotError
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
    from bot.errors import BotError

    settings = _settings()
    if not settings.discord.enabled:
        _fail("Discord is not configured: set PIPEBOT_DISCORD__TOKEN (or DISCORD_TOKEN)", 2)
    store = _open_store(settings.database_url)
    app = _compose().build_app(settings, _sources(settings, store=store), store=store)
    try:
        server = _compose().build_server(app, role="all", chats=("discord",))
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
    from bot.settings import reference

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
