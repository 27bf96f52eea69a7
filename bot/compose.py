"""The composition root: the only code that wires handlers, the core and connectors.

Settings are read once (by the CLI, `bot.main`) and passed in. Every builder imports what it
wires when it is called, so a command pays only for the parts it uses.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.agent import Agent
    from bot.alerts import Post
    from bot.conversation import Conversation
    from bot.drift import DriftJob
    from bot.ports import Sources
    from bot.redaction import Redactor
    from bot.store import Store
    from bot.work import Engine
    from handlers.deliveries import Deliveries
    from handlers.server import Server
    from handlers.webhooks import Reviews

log = logging.getLogger("pipebot")


@dataclass(frozen=True)
class App:
    settings: Settings
    store: Store
    sources: Sources
    conversation: Conversation
    redactor: Redactor
    agent: Agent | None = None


def build_sources(settings: Settings, *, store: Store | None = None) -> Sources:
    """The connectors the settings enable; an unset section leaves its source out.

    With a `store`, the dbt project keeps its last build there (`bot.kept_runs`), so a later
    ``dbt docs generate`` does not hide it.
    """
    from bot.kept_runs import KeepsLastBuild
    from bot.ports import Sources
    from bot.tools import Toolset
    from integrations.airflow import AirflowClient, airflow_toolset
    from integrations.dbt import ArtifactsProject, CloudProject, DbtCloudClient, dbt_toolset
    from integrations.warehouse import open_catalog, open_usage, usage_toolset, warehouse_toolset

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
    warehouse = open_catalog(settings.warehouse) if settings.warehouse.enabled else None
    usage = None
    if warehouse is not None:
        toolsets.append(warehouse_toolset(warehouse))
        # Spend and query history, on the warehouses that keep them (costs, digest, tools).
        usage = open_usage(settings.warehouse, warehouse)
        if usage is not None:
            toolsets.append(usage_toolset(usage))
    return Sources(
        airflow=airflow,
        dbt=dbt,
        dbt_runs=dbt_runs,
        warehouse=warehouse,
        usage=usage,
        dbt_states=build_states(settings, anywhere=False, cloud=cloud),
        toolsets=tuple(toolsets),
    )


def build_states(settings: Settings, *, anywhere: bool, cloud: Any = None) -> Any:
    """Whole dbt states for the schema review of a change: dbt Cloud runs when dbt Cloud is
    configured (production: the run of ``PIPEBOT_DBT_CLOUD__JOB_ID``), and folders — anywhere
    for the command line; for chat only inside the parent of ``PIPEBOT_DBT__ARTIFACTS_DIR``
    (none without it), so nobody probes the bot's disk from a channel."""
    from integrations.dbt import DbtCloudClient
    from integrations.dbt.state import StateLoader

    if cloud is None and settings.dbt_cloud.enabled:
        cloud = DbtCloudClient.from_settings(settings.dbt_cloud)
    artifacts = settings.dbt.artifacts_dir
    roots = None if anywhere else ((artifacts.resolve().parent,) if artifacts else ())
    return StateLoader(cloud=cloud, production_job=settings.dbt_cloud.job_id, roots=roots)


def build_app(settings: Settings, sources: Sources, *, store: Store | None = None) -> App:
    from bot.access import AccessPolicy
    from bot.agent import build_agent
    from bot.conversation import Conversation
    from bot.owners import OwnerDirectory
    from bot.playbooks import default_commands
    from bot.redaction import Redactor
    from bot.store import Store

    store = store or Store.open(settings.database_url)
    redactor = Redactor.build(settings.secrets(), settings.redaction.patterns)
    agent = build_agent(settings, store, redactor) if settings.agent.enabled else None
    commands = default_commands(
        owners=OwnerDirectory.from_settings(settings.owners),
        incident_store=store.incidents,
        agent=agent,
        digest_store=store.digests,
        drift_store=store.drift,
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
    from bot.store import Store
    from integrations.demo import demo_sources

    with tempfile.TemporaryDirectory(prefix="pipebot-demo-") as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'demo.db'}")
        try:
            yield build_app(settings, demo_sources(), store=store)
        finally:
            store.close()


def build_engine(settings: Settings, store: Store, *, role: str = "all") -> Engine:
    """The work engine for the store: procrastinate on PostgreSQL, the embedded one on SQLite
    (which serves one process: splitting roles needs PostgreSQL). The ``clock`` role only
    submits jobs, on either."""
    from datetime import timedelta

    from bot.errors import ConfigError
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
    from bot.owners import OwnerDirectory
    from bot.playbooks import digest
    from handlers import tracing, webhooks
    from handlers.deliveries import Deliveries
    from handlers.server import Server

    # Before the server: its job kinds and its app are traced as they are built. A no-op
    # without the standard OTEL_* variables or the `otel` extra.
    tracing.setup()
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
        drift=_drift_check(app),
        drift_platform=settings.drift.platform,
        drift_channel=settings.drift.channel,
        drift_workspace=settings.drift.workspace,
    )
    server.add_jobs(deliveries.jobs())
    server.add_routes(
        webhooks.routes(
            submit=lambda alert: server.submit(alert.key, ALERT_JOB, alert),
            token=_secret(settings.webhooks.token),
            dbt_secret=_secret(settings.dbt_cloud.webhook_secret),
            reviews=_ci_reviews(app, server, deliveries, alert_platform),
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


def _drift_check(app: App) -> Callable[[DriftJob, bool], Post | None] | None:
    """The drift job's work in this process: None without a warehouse to snapshot."""
    if app.sources.warehouse is None:
        return None
    from bot.drift import DriftWatch
    from bot.playbooks import drift

    settings = app.settings
    watch = DriftWatch(
        app.store, app.sources, schemas=settings.drift.schemas or settings.warehouse.schemas
    )
    from bot.alerts import Post

    def check(job: DriftJob, final: bool) -> Post | None:
        found = drift.scheduled(job, watch, final=final)
        return None if found is None else Post(reply=found[1], key=found[0], thread=None)

    return check


def _ci_reviews(
    app: App, server: Server, deliveries: Deliveries, alert_platform: str
) -> Reviews | None:
    """The schema reviews of dbt Cloud CI runs (PIPEBOT_DBT_CLOUD__CI_JOB_IDS): their job on
    the server, and what the dbt Cloud webhook accepts for them. None without CI jobs."""
    settings = app.settings
    if not settings.dbt_cloud.ci_job_ids:
        return None
    from bot.owners import OwnerDirectory
    from bot.playbooks.ci_review import REVIEW_JOB, CiReviews, CiRun
    from handlers.review_posts import ReviewPoster
    from handlers.webhooks import Reviews

    if not settings.dbt_cloud.enabled or settings.dbt_cloud.job_id is None:
        log.warning(
            "CI runs are reviewed against production: set PIPEBOT_DBT_CLOUD__ACCOUNT_ID, "
            "__TOKEN and __JOB_ID (the deploy job), or their reviews say they cannot review"
        )
    wanted = settings.schema_review
    # The schema-review channel, else the alert channel (its platform and workspace with it).
    if wanted.channel:
        platform, workspace, channel = (
            wanted.platform or alert_platform,
            wanted.workspace,
            wanted.channel,
        )
    else:
        platform, workspace = alert_platform, settings.alerts.workspace
        channel = settings.alerts.channel
    reviews = CiReviews(
        sources=app.sources,
        ci_jobs=settings.dbt_cloud.ci_job_ids,
        owners=OwnerDirectory.from_settings(settings.owners),
        platform=platform,
        agent=app.agent if wanted.advice else None,
    )

    def review(run: CiRun, final: bool) -> Post:
        return reviews.review(run, final=final)

    poster = ReviewPoster(
        deliveries=deliveries,
        review=review,
        platform=platform,
        channel=channel,
        workspace=workspace,
    )
    server.add_jobs(poster.jobs())
    return Reviews(wants=reviews.wants, submit=lambda run: server.submit(run.key, REVIEW_JOB, run))


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
