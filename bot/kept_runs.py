"""A dbt project whose last build stays readable after ``dbt docs generate``.

``dbt build && dbt docs generate`` is how most teams run dbt, and the second command rewrites
run_results.json with a "success" for every node it compiled: read as the build, a failed
build becomes an all-clear. `KeepsLastBuild` wraps the connector (any `bot.ports.DbtProject`)::

    dbt = KeepsLastBuild(ArtifactsProject("target"), store.dbt_runs, key=project.project_key)

Whenever it sees run results of a command that built or tested (`DbtRun.executed`: build,
run, test, seed, snapshot, retry, clone), it keeps them in the store under the project's key.
When the newest results come from a command that builds nothing, `last_run()` answers with the
kept run, marked as such (`superseded_by`, `superseded_at`, `kept_at`), and `lineage()` takes
its test results from it. With nothing kept, the newest results are returned as they are; their
`executed` is False and every playbook says that they are not a build.

The store is a help, not a dependency: when it cannot be read or written the project answers
as the connector does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.errors import SourceError, StoreError
from bot.facts import (
    ArtifactTimes,
    ColumnUse,
    DbtNode,
    DbtResult,
    DbtRun,
    Lineage,
    SourceFreshness,
)
from bot.ports import DbtProject
from bot.store.dbt_runs import DbtRuns, KeptRun, run_identity

__all__ = ["KeepsLastBuild"]

log = logging.getLogger(__name__)


class KeepsLastBuild:
    """`bot.ports.DbtProject` over another one, keeping its last build in the store.

    Anything else the connector offers (``where()``, ``check()``, ``client`` …) is passed
    through, so tools that look for it find it.
    """

    def __init__(self, project: DbtProject, runs: DbtRuns, *, key: str) -> None:
        self.inner = project
        self.system = project.system
        self.key = key
        self._runs = runs
        self._lock = threading.Lock()
        self._written = ""  # the invocation this process last kept (skips a write per call)
        self._cache: KeptRun | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (during unpickling, say): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"KeepsLastBuild({self.inner!r}, key={self.key!r})"

    # -- the port ---------------------------------------------------------------------------

    def last_run(self) -> DbtRun | None:
        return self._resolve(self.inner.last_run())

    def lineage(self, name: str, *, depth: int | None = None) -> Lineage:
        found = self.inner.lineage(name, depth=depth)
        run = self.last_run()
        results: dict[str, DbtResult] = {}
        if run is not None and run.executed:
            wanted = {t.unique_id for t in found.tests}
            results = {r.unique_id: r for r in run.results if r.unique_id in wanted}
        return replace(found, test_results=results, run=run)

    def node(self, name: str) -> DbtNode:
        self._observe()
        return self.inner.node(name)

    def nodes(self, resource_type: str | None = None) -> list[DbtNode]:
        self._observe()
        return self.inner.nodes(resource_type)

    def freshness(self) -> list[SourceFreshness]:
        self._observe()
        return self.inner.freshness()

    def as_of(self) -> datetime | None:
        return self.inner.as_of()

    def artifact_times(self) -> ArtifactTimes:
        return self.inner.artifact_times()

    def column_uses(self, name: str, columns: Sequence[str]) -> list[ColumnUse]:
        return self.inner.column_uses(name, columns)

    # -- keeping ----------------------------------------------------------------------------

    def _observe(self) -> None:
        """Keep the current run if it is a build: every question is a chance to see one
        before `dbt docs generate` replaces it."""
        try:
            current = self.inner.last_run()
        except SourceError:
            return  # the question itself will report it
        if current is not None and current.executed:
            self._keep(current)

    def _resolve(self, current: DbtRun | None) -> DbtRun | None:
        if current is not None and current.executed:
            self._keep(current)
            return current
        kept = self._kept()
        if kept is None:
            return current
        return replace(
            kept.run,
            superseded_by=current.command if current is not None else "",
            superseded_at=current.generated_at if current is not None else None,
            kept_at=kept.seen_at,
        )

    def _keep(self, run: DbtRun) -> None:
        ident = run_identity(run)
        if not ident or ident == self._written:
            return
        try:
            self._runs.keep(self.key, run)
        except (SQLAlchemyError, StoreError) as exc:
            log.warning("could not keep dbt run %s: %s", ident, exc)
            return
        with self._lock:
            self._written = ident
            self._cache = None

    def _kept(self) -> KeptRun | None:
        try:
            # Another process may have kept a newer build: compare ids before loading it.
            kept_id = self._runs.kept_id(self.key)
            if kept_id is None:
                return None
            with self._lock:
                cached = self._cache
            if cached is not None and run_identity(cached.run) == kept_id:
                return cached
            kept = self._runs.kept(self.key)
        except (SQLAlchemyError, StoreError) as exc:
            log.warning("could not read the kept dbt run: %s", exc)
            return None
        with self._lock:
            self._cache = kept
        return kept


def _implements_port(project: KeepsLastBuild) -> DbtProject:
    # Never called: mypy checks here that the class satisfies the core's Protocol.
    return project
