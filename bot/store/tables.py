"""The bot's own tables (SQLAlchemy 2 declarative). Alembic migrations create and evolve them;
a test compares these models with the migrated schema on SQLite and PostgreSQL.

All timestamps are stored as naive UTC and returned timezone-aware (`UTCDateTime`), because
SQLite has no time zones and mixing naive/aware values is a classic source of off-by-hours bugs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", "thread"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128))
    thread: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # "user" | "bot"
    author: Mapped[str] = mapped_column(String(128), default="")
    text: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(255))
    # The structured reply (bot) or the agent's transcript of tool results, as JSON.
    payload: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedEventRow(Base):
    """The "handled" mark: inserted in the transaction that stores the effect it guards, with
    the effect's outcome (a reply, the posts an alert decided on) so a retry can finish the job
    from it instead of doing the work again."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    result: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AcceptedEventRow(Base):
    """A platform event accepted as work on PostgreSQL, where procrastinate holds the job: the
    row commits in the transaction that defers the job, so a redelivery finds it. It keeps the
    job's payload too (procrastinate's job carries only the key)."""

    __tablename__ = "accepted_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WorkerRow(Base):
    """A process running jobs of the embedded engine; its heartbeat says it is alive."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ToolCallRow(Base):
    __tablename__ = "tool_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    tool: Mapped[str] = mapped_column(String(128))
    system: Mapped[str] = mapped_column(String(64))
    invocation: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LlmCallRow(Base):
    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    model: Mapped[str] = mapped_column(String(64))
    stop_reason: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(255), index=True)
    system: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))  # DAG id or dbt job
    node: Mapped[str] = mapped_column(String(255), default="")  # failing task or dbt node
    title: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_run_id: Mapped[str | None] = mapped_column(String(255))
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    # Where the incident's thread lives (the alert's thread or our own first post).
    platform: Mapped[str | None] = mapped_column(String(32))
    workspace: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(128))
    thread: Mapped[str | None] = mapped_column(String(128))
    facts: Mapped[dict[str, Any] | None]


class IncidentMuteRow(Base):
    __tablename__ = "incident_mutes"

    fingerprint: Mapped[str] = mapped_column(String(255), primary_key=True)
    muted_by: Mapped[str] = mapped_column(String(128))
    muted_at: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime | None]


class DigestScheduleRow(Base):
    __tablename__ = "digest_schedules"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128))
    cron: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the digest is narrowed to, as typed: "tag:finance owner:dana dbt:tag:finance".
    filters: Mapped[str] = mapped_column(String(512), default="", server_default="")


class DigestRunRow(Base):
    """One row per schedule and slot: the unique constraint is what stops double posting."""

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("digest_schedules.id", ondelete="CASCADE"))
    slot: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class OutboxRow(Base):
    """Every outgoing post: `idempotency_key` is unique, so one logical post has one row.

    A row is written as ``sending`` (attempts + 1) before the request leaves, so a retry knows
    the platform may already have the message and reconciles before sending again.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128))
    thread: Mapped[str | None] = mapped_column(String(128))
    # post | update | ephemeral | delete | respond | stream
    kind: Mapped[str] = mapped_column(String(16), default="post")
    # The rendered message, as sent (rendered once, on the first attempt).
    body: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="sending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    remote_ref: Mapped[str | None] = mapped_column(String(128))  # e.g. Slack message ts
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]


class JobRow(Base):
    """Accepted work of the embedded engine (SQLite): persisted before the platform is
    acknowledged; `key` (the platform's event id) refuses a redelivery."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_run_after", "status", "run_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    worker_id: Mapped[str | None] = mapped_column(String(64), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class DbtKeptRunRow(Base):
    """Per dbt project, the latest run pipebot saw that built or tested (build, run, test …).

    ``dbt build && dbt docs generate`` leaves the docs command's run_results.json, a "success"
    per compiled node; this row is what `status`, `triage dbt` and `lineage` show instead, so a
    failed build is never hidden behind it.
    """

    __tablename__ = "dbt_kept_runs"

    # "dbt-artifacts:<folder>" or "dbt-cloud:<account>:job:<job>"
    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    invocation_id: Mapped[str] = mapped_column(String(128))
    command: Mapped[str] = mapped_column(String(128))
    generated_at: Mapped[datetime | None]
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The run as `bot.facts.DbtRun` fields (msgspec builtins).
    run: Mapped[dict[str, Any]]


class DriftSnapshotRow(Base):
    """One snapshot of the warehouse catalog (`bot.drift`): the relations of the schemas it
    covers, taken whole or not at all. `key` names the snapshot (the clock's slot, or a manual
    one) so a job that runs again takes it once. `checked_at` set means the comparison with
    `base_id` was decided, and `report` holds what it found — the post is made from it."""

    __tablename__ = "drift_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The schemas asked for (None: every schema the role may use) and, per schema read,
    # "complete", "partial" (the row cap cut it) or "missing".
    scope: Mapped[Any | None] = mapped_column(JSON)
    schemas: Mapped[dict[str, Any]]
    relation_count: Mapped[int] = mapped_column(Integer, default=0)
    base_id: Mapped[int | None] = mapped_column(
        ForeignKey("drift_snapshots.id", ondelete="SET NULL")
    )
    report: Mapped[dict[str, Any] | None]
    checked_at: Mapped[datetime | None]


class DriftRelationRow(Base):
    """One table or view of a snapshot, with its columns as ``[name, type, nullable]``."""

    __tablename__ = "drift_relations"

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("drift_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    schema_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    columns: Mapped[Any] = mapped_column(JSON)
