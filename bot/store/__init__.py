"""The bot's own read-write database: threads, idempotency keys, audit, incidents, digests,
outbox and accepted jobs.

`Store.open(url)` creates the engine, migrates to the newest schema (unless told not to) and
exposes one small repository per noun::

    store = Store.open("sqlite:///pipebot.db")
    if store.events.claim("slack:T1:Ev123"):
        ...
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from bot.errors import StoreError
from bot.store import schema
from bot.store.audit import Audit
from bot.store.digests import Digests
from bot.store.events import EventLedger
from bot.store.incidents import Incidents
from bot.store.jobs import Jobs
from bot.store.outbox import Outbox
from bot.store.sessions import Sessions
from bot.store.threads import Threads

__all__ = ["Store"]


@dataclass(frozen=True)
class Store:
    engine: Engine
    events: EventLedger
    threads: Threads
    audit: Audit
    outbox: Outbox
    jobs: Jobs
    incidents: Incidents
    digests: Digests

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, echo: bool = False) -> Store:
        engine = make_engine(url, echo=echo)
        if upgrade:
            try:
                schema.upgrade(engine)
            except OperationalError as exc:
                raise StoreError(f"cannot open the bot database {_safe(url)}: {exc.orig}") from None
        return cls.from_engine(engine)

    @classmethod
    def from_engine(cls, engine: Engine) -> Store:
        sessions = Sessions(
            sessionmaker(engine, expire_on_commit=False),
            serialize_writes=engine.dialect.name == "sqlite",
        )
        return cls(
            engine=engine,
            events=EventLedger(sessions),
            threads=Threads(sessions),
            audit=Audit(sessions),
            outbox=Outbox(sessions),
            jobs=Jobs(sessions),
            incidents=Incidents(sessions),
            digests=Digests(sessions),
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        """Where the store lives, without credentials (for `status` and logs)."""
        return _safe(self.engine.url.render_as_string(hide_password=True))

    def close(self) -> None:
        self.engine.dispose()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


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
