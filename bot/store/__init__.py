"""The bot's own read-write database: threads, idempotency keys, audit, incidents, digests,
outbox, accepted jobs, the dbt runs it kept and snapshots of the warehouse catalog.

`Store.open(url)` creates the engine, migrates to the newest schema (unless told not to) and
exposes one small repository per noun::

    store = Store.open("sqlite:///pipebot.db")
    with store.sessions.begin() as session:
        if store.events.mark(session, "slack:T1:Ev123", result=reply_document):
            ...  # store the effect in the same transaction
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import sessionmaker

from bot.errors import StoreError
from bot.store import schema
from bot.store.accepted import AcceptedEvents
from bot.store.audit import Audit
from bot.store.dbt_runs import DbtRuns
from bot.store.digests import Digests
from bot.store.drift import DriftSnapshots
from bot.store.events import EventLedger
from bot.store.incidents import Incidents
from bot.store.jobs import Jobs
from bot.store.locks import Locks
from bot.store.outbox import Outbox
from bot.store.sessions import Sessions
from bot.store.threads import Threads
from bot.store.workers import Workers

__all__ = ["Store"]

# Connections the pool keeps: as many as requests may use the store at once.
POOL_SIZE = 20


@dataclass(frozen=True)
class Store:
    engine: Engine
    sessions: Sessions
    events: EventLedger
    threads: Threads
    audit: Audit
    outbox: Outbox
    jobs: Jobs
    incidents: Incidents
    digests: Digests
    workers: Workers
    accepted: AcceptedEvents
    locks: Locks
    dbt_runs: DbtRuns
    drift: DriftSnapshots

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, echo: bool = False) -> Store:
        engine = make_engine(url, echo=echo)
        if upgrade:
            _upgrade(engine, url)
        return cls.from_engine(engine)

    @classmethod
    def from_engine(cls, engine: Engine) -> Store:
        sessions = Sessions(
            sessionmaker(engine, expire_on_commit=False),
            serialize_writes=engine.dialect.name == "sqlite",
        )
        return cls(
            engine=engine,
            sessions=sessions,
            events=EventLedger(sessions),
            threads=Threads(sessions),
            audit=Audit(sessions),
            outbox=Outbox(sessions),
            jobs=Jobs(sessions),
            incidents=Incidents(sessions),
            digests=Digests(sessions),
            workers=Workers(sessions),
            accepted=AcceptedEvents(sessions),
            locks=Locks(engine),
            dbt_runs=DbtRuns(sessions),
            drift=DriftSnapshots(sessions),
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        """Where the store lives, without credentials (for `status` and logs)."""
        return _safe(self.engine.url.render_as_string(hide_password=True))

    def warm(self, connections: int = POOL_SIZE) -> None:
        """Open the pool's connections now, so the first burst of events after a start does
        not wait for them one by one (PostgreSQL; SQLite connections cost nothing)."""
        if self.backend == "sqlite":
            return
        held = [self.engine.connect() for _ in range(connections)]
        for connection in held:
            connection.close()

    def close(self) -> None:
        self.engine.dispose()


def _upgrade(engine: Engine, url: str) -> None:
    """Migrate to the newest schema, tolerating another process doing the same right now.

    Two processes starting together on a new database (``--role web`` and ``--role worker``)
    would both create the tables; the loser's error only means the winner got there first, so
    it looks again before giving up.
    """
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            schema.upgrade(engine)
            return
        except OperationalError as exc:
            if not _raced(exc) or attempt == MIGRATION_ATTEMPTS - 1:
                raise StoreError(f"cannot open the bot database {_safe(url)}: {exc.orig}") from None
        except (IntegrityError, ProgrammingError) as exc:
            if attempt == MIGRATION_ATTEMPTS - 1:
                raise StoreError(
                    f"cannot migrate the bot database {_safe(url)}: {exc.orig}"
                ) from None
        time.sleep(0.2 * (attempt + 1))
        if schema.current_revision(engine) == schema.head_revision(engine):
            return


def _raced(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "already exists" in text or "locked" in text


MIGRATION_ATTEMPTS = 5


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip on every checkout, the acknowledgement path included.
    # A connection the server dropped fails its request once and is replaced (SQLAlchemy
    # invalidates the pool on a disconnect error); TCP keepalives find dead ones meanwhile.
    # The pool holds as many connections as requests may run at once (Starlette's threadpool),
    # so a burst does not open and close overflow connections.
    return create_engine(
        url,
        echo=echo,
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
        pool_recycle=3600,
        connect_args={"keepalives": 1, "keepalives_idle": 30},
    )


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets the worker threads read while one writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL still survives a crash of the process (what a bot restart is); only
    # an OS crash or power loss can drop the last commits. FULL would fsync every commit, and
    # with writers queued on one lock that fsync becomes the ack latency of a busy channel.
    # Deployments that need power-loss durability use PostgreSQL.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unparsable URL is shown as a placeholder
        return "<unparsable URL>"
