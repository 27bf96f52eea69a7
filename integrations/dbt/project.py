"""`ArtifactsProject`: a dbt project seen through a local ``target/`` folder.

Reads manifest.json, run_results.json, sources.json and catalog.json written by dbt::

    project = ArtifactsProject("path/to/target")
    project.lineage("fct_orders").exposures   # (DbtNode(name='revenue_dashboard', …),)

Each file is parsed once and parsed again only when its modification time or size changes
(dbt rewrites them on every invocation), so a long-running bot follows new runs without a
restart. The lineage index is built when the manifest is loaded. Reads are thread-safe: a
reload happens under a lock and replaces an immutable view that readers keep using.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bot.facts import DbtRun
from bot.ports import DbtProject
from bot.settings import DbtSettings
from bot.tools import Check
from integrations.dbt._view import ManifestIndex, ProjectView, ViewBacked, dbt_run
from integrations.dbt.artifacts import (
    ArtifactError,
    Catalog,
    Loaded,
    Manifest,
    RunResults,
    SourcesArtifact,
    read_catalog,
    read_manifest,
    read_run_results,
    read_sources,
)
from integrations.errors import UpstreamError, UpstreamUnavailable

SYSTEM = "dbt"
MANIFEST = "manifest.json"
RUN_RESULTS = "run_results.json"
SOURCES = "sources.json"
CATALOG = "catalog.json"

T = TypeVar("T")


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int


class ArtifactsProject(ViewBacked):
    """`bot.ports.DbtProject` over a dbt ``target/`` folder."""

    system = SYSTEM

    def __init__(self, target_dir: str | Path) -> None:
        self.target_dir = Path(target_dir)
        self._lock = threading.Lock()
        self._view: ProjectView | None = None
        self._stamps: dict[str, _Stamp | None] = {}
        self._manifest: Loaded[Manifest] | None = None
        self._catalog: Loaded[Catalog] | None = None
        self._run_results: Loaded[RunResults] | None = None
        self._sources: Loaded[SourcesArtifact] | None = None
        self._index: ManifestIndex | None = None
        self._run: DbtRun | None = None
        self.problems: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: DbtSettings) -> ArtifactsProject:
        if settings.artifacts_dir is None:
            raise ValueError("PIPEBOT_DBT__ARTIFACTS_DIR is not set")
        return cls(settings.artifacts_dir)

    def where(self) -> str:
        """Where the facts come from, for tool invocations and reply sources."""
        return f"dbt artifacts in {self.target_dir}"

    @property
    def project_key(self) -> str:
        """What pipebot files this project's kept run results under: the artifact folder."""
        return f"dbt-artifacts:{self.target_dir.resolve()}"

    # -- loading ----------------------------------------------------------------------------

    def view(self) -> ProjectView:
        """The current view, reloading whichever files changed since the last call."""
        stamps = {name: self._stamp(name) for name in (MANIFEST, CATALOG, RUN_RESULTS, SOURCES)}
        with self._lock:
            if self._view is not None and stamps == self._stamps:
                return self._view
            self._reload(stamps)
            assert self._view is not None  # _reload sets it or raises
            return self._view

    def _stamp(self, name: str) -> _Stamp | None:
        try:
            stat = (self.target_dir / name).stat()
        except OSError:
            return None
        return _Stamp(stat.st_mtime_ns, stat.st_size)

    def _reload(self, stamps: dict[str, _Stamp | None]) -> None:
        changed = {name for name, stamp in stamps.items() if self._stamps.get(name, 0) != stamp}
        if stamps[MANIFEST] is None:
            raise UpstreamUnavailable(
                SYSTEM,
                f"no {MANIFEST} in {self.target_dir} — run `dbt build` (or `dbt parse`) there, "
                "or point PIPEBOT_DBT__ARTIFACTS_DIR at the project's target/ folder",
            )
        if MANIFEST in changed:
            manifest = self._parse(MANIFEST, read_manifest)
            if manifest is not None:
                self._manifest = manifest
        if self._manifest is None:
            raise UpstreamError(
                SYSTEM, f"{MANIFEST} in {self.target_dir}: {self.problems[MANIFEST]}"
            )
        if CATALOG in changed:
            self._catalog = self._parse_optional(CATALOG, stamps, read_catalog, self._catalog)
        if RUN_RESULTS in changed:
            run_results = self._parse_optional(
                RUN_RESULTS, stamps, read_run_results, self._run_results
            )
            if run_results is not self._run_results:
                self._run_results = run_results
                self._run = dbt_run(run_results) if run_results is not None else None
        if SOURCES in changed:
            self._sources = self._parse_optional(SOURCES, stamps, read_sources, self._sources)
        if self._index is None or changed & {MANIFEST, CATALOG}:
            self._index = ManifestIndex(self._manifest, self._catalog, system=SYSTEM)
        self._view = ProjectView(self._index, run=self._run, sources=self._sources)
        for name in changed:
            # A file that failed to parse (dbt may be halfway through writing it) is tried
            # again on the next call instead of being remembered as read.
            self._stamps[name] = None if name in self.problems else stamps[name]
        self._stamps.update({n: s for n, s in stamps.items() if n not in changed})

    def _parse_optional(
        self,
        name: str,
        stamps: dict[str, _Stamp | None],
        reader: Callable[[bytes], Loaded[T]],
        previous: Loaded[T] | None,
    ) -> Loaded[T] | None:
        if stamps[name] is None:
            self.problems.pop(name, None)
            return None
        parsed = self._parse(name, reader)
        # Keep answering from the last good file while a new one cannot be read.
        return parsed if parsed is not None else previous

    def _parse(self, name: str, reader: Callable[[bytes], Loaded[T]]) -> Loaded[T] | None:
        path = self.target_dir / name
        try:
            loaded = reader(path.read_bytes())
        except FileNotFoundError:
            self.problems.pop(name, None)
            return None
        except (OSError, ArtifactError) as exc:
            self.problems[name] = f"cannot be read ({exc})"
            return None
        self.problems.pop(name, None)
        return loaded

    # -- doctor -----------------------------------------------------------------------------

    def check(self) -> Check:
        """Files present and readable, their schema versions and when they were generated."""
        target = str(self.target_dir)
        try:
            view = self.view()
        except UpstreamError as exc:
            return Check(system=SYSTEM, ok=False, detail=exc.reason, target=target)
        present = [
            loaded.label
            for loaded in (self._manifest, self._run_results, self._sources, self._catalog)
            if loaded is not None
        ]
        detail = ", ".join(present)
        as_of = view.as_of()
        if as_of is not None:
            detail += f"; generated {as_of:%Y-%m-%d %H:%M} UTC"
        notes = [f"{name} {problem}" for name, problem in sorted(self.problems.items())]
        for loaded in (self._manifest, self._run_results, self._sources, self._catalog):
            if loaded is None:
                continue
            if not loaded.supported:
                notes.append(f"{loaded.label} is outside the versions pipebot is tested with")
            if loaded.dropped:
                notes.append(f"{loaded.dropped} unreadable entries skipped in {loaded.label}")
        if view.run is not None and not view.run.executed:
            notes.append(
                f"{RUN_RESULTS} is from `dbt {view.run.command}`, which builds and tests nothing"
            )
        missing = [n for n in (RUN_RESULTS, SOURCES) if self._stamp(n) is None]
        if missing:
            notes.append("no " + " or ".join(missing) + " yet")
        if notes:
            detail += " (" + "; ".join(notes) + ")"
        return Check(
            system=SYSTEM,
            ok=not self.problems,
            detail=detail,
            target=target,
            version=view.index.metadata.dbt_version or "",
        )


def _implements_port(project: ArtifactsProject) -> DbtProject:
    # Never called: mypy checks here that the class satisfies the core's Protocol.
    return project
