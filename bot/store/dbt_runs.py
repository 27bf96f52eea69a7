"""dbt runs pipebot kept: per project, the latest run it saw that built or tested.

One row per project. A run replaces the kept one only when it is a different invocation that
is not older, so two processes that saw the same build write it once, and an older copy of the
artifacts put back in the folder does not displace a newer build::

    store.dbt_runs.keep("dbt-artifacts:/srv/shop/target", run)      # True: newly kept
    store.dbt_runs.kept("dbt-artifacts:/srv/shop/target")           # KeptRun(run=…, seen_at=…)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import or_, select, update

from bot.facts import DbtRun
from bot.store.sessions import Sessions, insert_new
from bot.store.tables import DbtKeptRunRow, utcnow


@dataclass(frozen=True, kw_only=True)
class KeptRun:
    run: DbtRun
    seen_at: datetime  # when pipebot first saw this run


class DbtRuns:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def keep(self, project: str, run: DbtRun, *, seen_at: datetime | None = None) -> bool:
        """Keep `run` as `project`'s latest; False when that run (or a newer one) is kept."""
        seen_at = seen_at or utcnow()
        values: dict[str, Any] = {
            "project": project,
            "invocation_id": run_identity(run),
            "command": run.command[:128],
            "generated_at": run.generated_at,
            "seen_at": seen_at,
            "run": _encode(run),
        }
        row = DbtKeptRunRow
        not_older = (
            row.generated_at.is_(None)
            if run.generated_at is None
            else or_(row.generated_at.is_(None), row.generated_at <= run.generated_at)
        )
        with self._sessions.begin() as session:
            if insert_new(session, row, values):
                return True
            # One statement decides, so racing processes cannot keep the older of two runs.
            changed = session.execute(
                update(row)
                .where(row.project == project, row.invocation_id != values["invocation_id"])
                .where(not_older)
                .values(**{k: v for k, v in values.items() if k != "project"})
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    def kept_id(self, project: str) -> str | None:
        """The invocation id of the kept run (a cheap look before loading it)."""
        with self._sessions() as session:
            return session.scalar(
                select(DbtKeptRunRow.invocation_id).where(DbtKeptRunRow.project == project)
            )

    def kept(self, project: str) -> KeptRun | None:
        with self._sessions() as session:
            row = session.get(DbtKeptRunRow, project)
            if row is None:
                return None
            return KeptRun(run=msgspec.convert(row.run, DbtRun), seen_at=row.seen_at)


def run_identity(run: DbtRun) -> str:
    """dbt's invocation id; a dbt Cloud run's id when no step left one."""
    ident = run.invocation_id or (f"cloud-run:{run.cloud_run_id}" if run.cloud_run_id else "")
    return ident[:128]


def _encode(run: DbtRun) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(run)
    return data
