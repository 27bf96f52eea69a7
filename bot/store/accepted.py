"""Platform events accepted as work on PostgreSQL, where procrastinate keeps the jobs.

`accept` runs in the transaction that defers the procrastinate job, so the event id, the job's
payload and the job commit together: a redelivery finds the row and is refused for as long as
the row lives (procrastinate's own queueing lock would refuse it only while the first job still
waits). The payload is kept here, not in procrastinate's job, whose arguments are only the key:
this runs before Slack gets its acknowledgement, and procrastinate's way of passing arguments
(JSON inside a composite-type literal, escaped character by character) cost more than the rest
of the insert (bench/bench_slack_ack.py; docs/operations.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import delete, select

from bot.store.keys import fit
from bot.store.sessions import Sessions
from bot.store.tables import AcceptedEventRow, utcnow

# The driver's SQL, not SQLAlchemy's: the statement runs on the acknowledgement path.
_ACCEPT = (
    "INSERT INTO accepted_events (key, kind, payload, created_at) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING RETURNING key"
)


class AcceptedEvents:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    @staticmethod
    def accept(connection: psycopg.Connection[Any], key: str, kind: str, payload: Any) -> bool:
        """Record `key` in `connection`'s transaction; False when it was accepted before."""
        row = connection.execute(_ACCEPT, (fit(key), kind, Jsonb(payload), utcnow())).fetchone()
        return row is not None

    def payload(self, key: str) -> tuple[bool, Any]:
        """(found, the payload) of the event accepted as `key`."""
        with self._sessions() as session:
            row = session.execute(
                select(AcceptedEventRow.payload).where(AcceptedEventRow.key == fit(key))
            ).first()
        return (False, None) if row is None else (True, row[0])

    def prune(self, older_than: datetime) -> int:
        with self._sessions.begin() as session:
            result = session.execute(
                delete(AcceptedEventRow).where(AcceptedEventRow.created_at < older_than)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
