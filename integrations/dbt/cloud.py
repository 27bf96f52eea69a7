"""dbt Cloud, read-only: the Admin API v2 client and a `DbtProject` over a job's artifacts.

    client = DbtCloudClient(base_url="https://ab123.us1.dbt.com", account_id=1, token="…")
    client.runs(job_id=42, statuses=("error",), limit=5)     # newest finished first
    project = CloudProject(client, job_id=42)                 # the job's latest artifacts
    project.lineage("fct_orders").exposures

Only GET requests are made, through `ReadOnlySession`; write endpoints of the API (trigger,
rerun, cancel, the POST on ``…/retry/``) have no method here and would be refused by the
session anyway. The Discovery API (GraphQL) is reachable only when its URL is given, and only
with documents whose operations are all ``query``.

Encodings follow the OpenAPI spec (``dbt-labs/dbt-cloud-openapi-spec`` openapi-v2.yaml):
``include_related`` as a comma-separated list, ``status__in`` as repeated parameters.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import msgspec
from msgspec import Struct
from pydantic import SecretStr

from bot.errors import SourceError
from bot.facts import EXECUTING_COMMANDS, DbtRun
from bot.ports import DbtProject
from bot.settings import DbtCloudSettings
from bot.tools import Check
from integrations._http import (
    AllowedPost,
    Operations,
    ReadOnlySession,
    graphql_query_only,
    invocation_text,
    paginate,
)
from integrations.dbt._view import (
    ManifestIndex,
    ProjectView,
    ViewBacked,
    dbt_result,
    run_command,
)
from integrations.dbt.artifacts import (
    ArtifactError,
    Catalog,
    Loaded,
    RunResults,
    SourcesArtifact,
    parse_time,
    read_catalog,
    read_manifest,
    read_run_results,
    read_sources,
)
from integrations.errors import UpstreamError, UpstreamNotFound

SYSTEM = "dbt Cloud"
PAGE_SIZE = 100  # the API's own cap per page

RUN_STATUS = {1: "Queued", 2: "Starting", 3: "Running", 10: "Success", 20: "Error", 30: "Cancelled"}
# Names people (and the model) use for run statuses, mapped to the API's codes.
STATUS_CODES: dict[str, int] = {
    "queued": 1,
    "starting": 2,
    "running": 3,
    "success": 10,
    "succeeded": 10,
    "error": 20,
    "errored": 20,
    "failed": 20,
    "cancelled": 30,
    "canceled": 30,
}
T = TypeVar("T")


# --- records ---------------------------------------------------------------------------------


class _Record(Struct, frozen=True):
    """Base for API records: unknown fields ignored, every field optional."""


class Account(_Record, frozen=True):
    id: int | None = None
    name: str | None = None
    plan: str | None = None
    state: int | None = None


class RunStep(_Record, frozen=True):
    id: int | None = None
    run_id: int | None = None
    index: int | None = None
    name: str = ""
    status: int | None = None
    status_humanized: str | None = None
    logs: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration: str | None = None
    run_step_command: dict[str, Any] | None = None

    @property
    def command(self) -> str:
        """``Invoke dbt with `dbt build --select x``` → ``build``; ``""`` for non-dbt steps."""
        explicit = (self.run_step_command or {}).get("dbt_command")
        return dbt_command(explicit if isinstance(explicit, str) and explicit else self.name)

    @property
    def status_text(self) -> str:
        return self.status_humanized or RUN_STATUS.get(self.status or 0, str(self.status or ""))


class Job(_Record, frozen=True):
    id: int | None = None
    name: str = ""
    account_id: int | None = None
    project_id: int | None = None
    environment_id: int | None = None
    job_type: str | None = None
    description: str | None = None
    execute_steps: list[str] | None = None
    generate_docs: bool | None = None
    run_generate_sources: bool | None = None
    dbt_version: str | None = None
    state: int | None = None
    schedule: dict[str, Any] | None = None


class Trigger(_Record, frozen=True):
    cause: str | None = None
    cause_category: str | None = None
    job_definition_id: int | None = None
    git_branch: str | None = None
    git_sha: str | None = None


class Run(_Record, frozen=True):
    id: int
    account_id: int | None = None
    job_definition_id: int | None = None
    environment_id: int | None = None
    project_id: int | None = None
    status: int | None = None
    status_humanized: str | None = None
    status_message: str | None = None
    dbt_version: str | None = None
    git_branch: str | None = None
    git_sha: str | None = None
    href: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration: str | None = None
    duration_humanized: str | None = None
    in_progress: bool | None = None
    is_complete: bool | None = None
    has_docs_generated: bool | None = None
    has_sources_generated: bool | None = None
    trigger: Trigger | None = None
    job: Job | None = None
    run_steps: list[RunStep] | None = None

    @property
    def status_text(self) -> str:
        return self.status_humanized or RUN_STATUS.get(self.status or 0, str(self.status or ""))

    @property
    def finished(self) -> datetime | None:
        return parse_time(self.finished_at)

    @property
    def complete(self) -> bool:
        if self.is_complete is not None:
            return self.is_complete
        return self.status in (10, 20, 30)


class FailureDetails(_Record, frozen=True):
    failed_step: str | None = None
    skipped_steps: list[str] | None = None


def dbt_command(text: str) -> str:
    """The dbt sub-command a step ran: ``build``, ``source freshness``, ``docs generate``."""
    match = re.search(r"`\s*dbt\s+([^`]*)`", text) or re.match(r"\s*dbt\s+(.*)", text)
    if match is None:
        return ""
    words = []
    for word in match.group(1).split():
        if word.startswith("-"):
            break
        words.append(word)
    if words[:1] in (["source"], ["docs"]):
        return " ".join(words[:2])
    return words[0] if words else ""


def status_code(status: str | int) -> int:
    """``"error"`` / ``"Error"`` / ``20`` → ``20``; `ValueError` for anything else."""
    if isinstance(status, int):
        if status in RUN_STATUS:
            return status
    else:
        text = status.strip().lower()
        if text.isdigit() and int(text) in RUN_STATUS:
            return int(text)
        if text in STATUS_CODES:
            return STATUS_CODES[text]
    raise ValueError(f"unknown dbt Cloud run status {status!r}")


# --- the client ------------------------------------------------------------------------------


_ACCOUNT = r"/api/v2/accounts/\d+/"
# Metric labels: each Admin API call under the client method that makes it.
OPERATIONS = Operations.of(
    "dbt_cloud",
    {
        _ACCOUNT + r"$": "account",
        _ACCOUNT + r"jobs/$": "jobs",
        _ACCOUNT + r"jobs/\d+/$": "job",
        _ACCOUNT + r"jobs/\d+/artifacts/.+": "job_artifact",
        _ACCOUNT + r"runs/$": "runs",
        _ACCOUNT + r"runs/\d+/$": "run",
        _ACCOUNT + r"runs/\d+/retry/$": "failure_details",
        _ACCOUNT + r"runs/\d+/artifacts/$": "run_artifacts",
        _ACCOUNT + r"runs/\d+/artifacts/.+": "run_artifact",
        _ACCOUNT + r"steps/\d+/$": "step",
    },
)
# The Discovery API has one endpoint; every call is a GraphQL query.
DISCOVERY_OPERATIONS = Operations.of("dbt_cloud", {"": "discovery_query"})


class DbtCloudClient:
    """Typed, read-only access to the dbt Cloud Admin API v2 for one account."""

    system = SYSTEM

    def __init__(
        self,
        *,
        base_url: str,
        account_id: int,
        token: str | SecretStr,
        timeout: float = 20.0,
        retries: int = 3,
        backoff: float = 0.5,
        discovery_url: str | None = None,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        self.account_id = account_id
        self.base_url = base_url.rstrip("/")
        self.session = ReadOnlySession(
            system=SYSTEM,
            base_url=self.base_url,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            operations=OPERATIONS,
        )
        self.session.headers["Authorization"] = f"Token {secret}"
        self.session.headers["Accept"] = "application/json"
        self.discovery: ReadOnlySession | None = None
        if discovery_url:
            parts = urlsplit(discovery_url)
            self.discovery = ReadOnlySession(
                system=SYSTEM,
                base_url=f"{parts.scheme}://{parts.netloc}",
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                allowed_posts=(
                    AllowedPost(
                        path=parts.path or "/graphql",
                        check=graphql_query_only,
                        why="dbt Discovery API: GraphQL queries read metadata",
                    ),
                ),
                operations=DISCOVERY_OPERATIONS,
            )
            self._discovery_path = parts.path or "/graphql"
            self.discovery.headers["Authorization"] = f"Bearer {secret}"
        self._calls = threading.local()

    def __repr__(self) -> str:
        return f"DbtCloudClient(base_url={self.base_url!r}, account_id={self.account_id})"

    @classmethod
    def from_settings(cls, settings: DbtCloudSettings) -> DbtCloudClient:
        if settings.account_id is None or settings.token is None:
            raise ValueError("PIPEBOT_DBT_CLOUD__ACCOUNT_ID and __TOKEN must both be set")
        return cls(
            base_url=settings.base_url,
            account_id=settings.account_id,
            token=settings.token,
            timeout=settings.timeout,
            discovery_url=settings.discovery_url,
        )

    # -- what was called, for ToolResult.invocation ------------------------------------------

    @contextmanager
    def recording(self) -> Iterator[list[str]]:
        """Collect the calls this thread makes inside the block (``GET /api/v2/…``)."""
        calls: list[str] = []
        previous = getattr(self._calls, "list", None)
        self._calls.list = calls
        try:
            yield calls
        finally:
            self._calls.list = previous

    def _note(self, method: str, path: str, params: Any) -> None:
        calls = getattr(self._calls, "list", None)
        if calls is not None:
            calls.append(invocation_text(method, path, params))

    # -- plumbing -----------------------------------------------------------------------------

    def _path(self, tail: str) -> str:
        return f"/api/v2/accounts/{self.account_id}/{tail}"

    def _envelope(self, path: str, params: Sequence[tuple[str, Any]] = ()) -> dict[str, Any]:
        self._note("GET", path, params)
        body = self.session.get_json(path, params=list(params))
        if not isinstance(body, dict):
            raise UpstreamError(SYSTEM, f"GET {path} answered with something other than an object")
        status = body.get("status")
        if isinstance(status, dict) and status.get("is_success") is False:
            message = status.get("user_message") or status.get("developer_message") or "failed"
            raise UpstreamError(SYSTEM, f"GET {path}: {message}", status=status.get("code"))
        return body

    def _data(self, path: str, kind: type[T], params: Sequence[tuple[str, Any]] = ()) -> T:
        body = self._envelope(path, params)
        return _convert(body.get("data"), kind, path)

    # -- account, jobs ------------------------------------------------------------------------

    def account(self) -> Account:
        return self._data(self._path(""), Account)

    def jobs(
        self,
        *,
        project_id: int | None = None,
        environment_id: int | None = None,
        name_contains: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        filters: list[tuple[str, Any]] = []
        if project_id is not None:
            filters.append(("project_id", project_id))
        if environment_id is not None:
            filters.append(("environment_id", environment_id))
        if name_contains:
            filters.append(("name__icontains", name_contains))
        return list(self._list(self._path("jobs/"), Job, filters, limit=limit, offset=0))

    def job(self, job_id: int) -> Job:
        return self._data(self._path(f"jobs/{int(job_id)}/"), Job)

    # -- runs ---------------------------------------------------------------------------------

    def runs(
        self,
        *,
        job_id: int | None = None,
        status: str | int | None = None,
        statuses: Sequence[str | int] = (),
        order_by: str = "-finished_at",
        limit: int = 25,
        offset: int = 0,
        include_related: Sequence[str] = (),
        environment_id: int | None = None,
        project_id: int | None = None,
    ) -> list[Run]:
        """Runs of the account, newest finished first by default.

        `status` filters on one status, `statuses` on several (``"error"``, ``20`` …); pages of
        100 are fetched until `limit` runs or the ``total_count`` the API reports.
        """
        filters: list[tuple[str, Any]] = []
        if job_id is not None:
            filters.append(("job_definition_id", int(job_id)))
        if environment_id is not None:
            filters.append(("environment_id", int(environment_id)))
        if project_id is not None:
            filters.append(("project_id", int(project_id)))
        if status is not None:
            filters.append(("status", status_code(status)))
        filters.extend(("status__in", status_code(s)) for s in statuses)
        if include_related:
            filters.append(("include_related", ",".join(include_related)))
        filters.append(("order_by", order_by))
        return list(self._list(self._path("runs/"), Run, filters, limit=limit, offset=offset))

    def run(
        self, run_id: int, *, include_related: Sequence[str] = ("trigger", "job", "run_steps")
    ) -> Run:
        params = [("include_related", ",".join(include_related))] if include_related else []
        return self._data(self._path(f"runs/{int(run_id)}/"), Run, params)

    def run_steps(self, run_id: int) -> list[RunStep]:
        return list(self.run(run_id, include_related=("run_steps",)).run_steps or ())

    def step(self, step_id: int) -> RunStep:
        return self._data(self._path(f"steps/{int(step_id)}/"), RunStep)

    def failure_details(self, run_id: int) -> FailureDetails:
        """Which step failed and which were skipped (``GET …/runs/{id}/retry/``)."""
        return self._data(self._path(f"runs/{int(run_id)}/retry/"), FailureDetails)

    # -- artifacts ----------------------------------------------------------------------------

    def run_artifacts(self, run_id: int) -> list[str]:
        """Artifact paths of a run, without the compiled/ and run/ SQL files."""
        body = self._envelope(self._path(f"runs/{int(run_id)}/artifacts/"))
        names = body.get("data") or []
        return [n for n in names if isinstance(n, str) and not n.startswith(("compiled/", "run/"))]

    def run_artifact(self, run_id: int, path: str, *, step: int | None = None) -> bytes:
        """One artifact file of a run (default: as left by its last step)."""
        found = self.run_artifact_or_none(run_id, path, step=step)
        if found is None:
            where = f" of step {step}" if step is not None else ""
            raise UpstreamNotFound(SYSTEM, f"run {run_id} has no artifact {path}{where}")
        return found

    def run_artifact_or_none(
        self, run_id: int, path: str, *, step: int | None = None
    ) -> bytes | None:
        """Like `run_artifact`, but `None` when the run or step did not write that file."""
        return self._artifact(self._path(f"runs/{int(run_id)}/artifacts/{_remainder(path)}"), step)

    def job_artifact(self, job_id: int, path: str) -> bytes:
        """The latest artifact `path` of a job's runs."""
        found = self._artifact(self._path(f"jobs/{int(job_id)}/artifacts/{_remainder(path)}"))
        if found is None:
            raise UpstreamNotFound(SYSTEM, f"job {job_id} has no artifact {path}")
        return found

    def _artifact(self, path: str, step: int | None = None) -> bytes | None:
        params = [("step", int(step))] if step is not None else []
        self._note("GET", path, params)
        response = self.session.call(
            "GET", path, params=params, headers={"Accept": "*/*"}, ok=(404,)
        )
        return None if response.status_code == 404 else response.content

    # -- discovery ----------------------------------------------------------------------------

    def discovery_query(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        """Run a Discovery API GraphQL *query*; mutations are refused before leaving."""
        if self.discovery is None:
            raise UpstreamError(SYSTEM, "the Discovery API URL is not configured")
        self._note("POST", self._discovery_path, None)
        response = self.discovery.call(
            "POST",
            self._discovery_path,
            json_body={"query": query, "variables": dict(variables or {})},
        )
        try:
            body = response.json()
        except ValueError:
            raise UpstreamError(SYSTEM, "the Discovery API answered with non-JSON") from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            first = errors[0].get("message") if isinstance(errors[0], dict) else errors[0]
            raise UpstreamError(SYSTEM, f"Discovery API: {first}")
        return body.get("data") if isinstance(body, dict) else None

    # -- pagination ---------------------------------------------------------------------------

    def _list(
        self,
        path: str,
        kind: type[T],
        filters: Sequence[tuple[str, Any]],
        *,
        limit: int,
        offset: int,
    ) -> Iterator[T]:
        def fetch(start: int, size: int) -> tuple[list[T], int | None]:
            params = [*filters, ("limit", size), ("offset", offset + start)]
            body = self._envelope(path, params)
            items = body.get("data") or []
            pagination = (body.get("extra") or {}).get("pagination") or {}
            total = pagination.get("total_count")
            remaining = None if not isinstance(total, int) else max(total - offset, 0)
            return [_convert(item, kind, path) for item in items], remaining

        return paginate(fetch, page_size=PAGE_SIZE, max_items=max(limit, 0))

    # -- doctor -------------------------------------------------------------------------------

    def check(self) -> Check:
        """Reachable, token accepted, account readable (``pipebot doctor``)."""
        try:
            account = self.account()
        except SourceError as exc:
            return Check(system=SYSTEM, ok=False, detail=exc.reason, target=self.base_url)
        name = f"'{account.name}' " if account.name else ""
        return Check(
            system=SYSTEM,
            ok=True,
            detail=f"account {name}(id {self.account_id}) readable with the token",
            target=self.base_url,
        )


def _remainder(path: str) -> str:
    return quote(path.lstrip("/"), safe="/")


def _convert(value: Any, kind: type[T], path: str) -> T:
    try:
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise UpstreamError(
            SYSTEM, f"GET {path} answered with an unexpected shape ({exc})"
        ) from None


# --- runs as facts ---------------------------------------------------------------------------


class _RunArtifacts:
    """What one finished run left: its manifest view and its merged run results."""

    def __init__(self, view: ProjectView, run: Run) -> None:
        self.view = view
        self.run = run


def _parse(reader: Callable[[bytes], Loaded[T]], data: bytes | None, what: str) -> Loaded[T] | None:
    if data is None:
        return None
    try:
        return reader(data)
    except ArtifactError as exc:
        raise UpstreamError(SYSTEM, f"{what} cannot be read ({exc})") from None


def cloud_dbt_run(client: DbtCloudClient, run_id: int, *, run: Run | None = None) -> DbtRun:
    """A dbt Cloud run as a `DbtRun`: job name, humanized status, link, and the results of
    every dbt step that built or tested something (a later step's result for a node wins).

    A job's usual last step, ``dbt docs generate``, leaves a run_results.json of its own (a
    "success" per compiled node); it is never read as the run's results, whichever step comes
    last. A run with no such step says which commands it ran, so nobody takes it for a build.
    """
    if run is None or not run.run_steps:
        run = client.run(run_id)
    merged: OrderedDict[str, Any] = OrderedDict()
    commands: list[str] = []
    last: Loaded[RunResults] | None = None
    elapsed = 0.0
    for step in _result_steps(run):
        data = client.run_artifact_or_none(run.id, "run_results.json", step=step.index)
        loaded = _parse(read_run_results, data, f"run_results.json of run {run.id}")
        if loaded is None:
            continue
        written_by = run_command(loaded.value.args or {})
        if written_by and written_by not in EXECUTING_COMMANDS:
            continue  # the step's name said build, its results say otherwise: trust the file
        last = loaded
        commands.append(step.command)
        elapsed += loaded.value.elapsed_time or 0.0
        for result in loaded.value.results or ():
            if result.unique_id:
                merged.pop(result.unique_id, None)
                merged[result.unique_id] = result
    if last is None and not run.run_steps:
        # No step list (older API, trimmed response): the run's last step is all there is,
        # and its command is whatever its run_results say (often `docs generate`).
        data = client.run_artifact_or_none(run.id, "run_results.json")
        last = _parse(read_run_results, data, f"run_results.json of run {run.id}")
        if last is not None:
            merged.update((r.unique_id, r) for r in last.value.results or () if r.unique_id)
            commands.append(run_command(last.value.args or {}))
            elapsed = last.value.elapsed_time or 0.0
    elif last is None:
        # Only steps that build nothing (a docs or freshness job): name them, no results.
        commands.extend(s.command for s in run.run_steps or () if s.command)
    job_name = run.job.name if run.job and run.job.name else ""
    metadata = last.value.metadata if last is not None else None
    return DbtRun(
        invocation_id=(metadata.invocation_id or "") if metadata else "",
        command=" + ".join(c for c in commands if c),
        generated_at=parse_time(metadata.generated_at) if metadata else run.finished,
        elapsed_s=elapsed if last is not None else None,
        results=tuple(dbt_result(r) for r in merged.values()),
        cloud_run_id=run.id,
        job_name=job_name,
        url=run.href or "",
        status=run.status_text,
    )


def _result_steps(run: Run) -> list[RunStep]:
    return [
        s
        for s in run.run_steps or ()
        if s.index is not None and s.command.split(" ")[0] in EXECUTING_COMMANDS
    ]


# How many earlier runs of a job are looked at to find the previous finished one.
PREVIOUS_LOOKBACK = 10


class CloudProject(ViewBacked):
    """`bot.ports.DbtProject` over the latest finished run of one dbt Cloud job.

    The latest finished run is looked up at most every `refresh_s` seconds; its artifacts are
    downloaded once and kept by run id (finished runs do not change). When the newest runs
    left no manifest, up to `look_back` runs are tried, newest first.
    """

    system = SYSTEM

    def __init__(
        self,
        client: DbtCloudClient,
        job_id: int,
        *,
        refresh_s: float = 60.0,
        keep_runs: int = 3,
        look_back: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.refresh_s = refresh_s
        self.keep_runs = keep_runs
        self._clock = clock
        self._lock = threading.Lock()
        self.look_back = look_back
        self._chosen: tuple[float, int] | None = None  # (when, run id) of the artifacts in use
        self._without_manifest: set[int] = set()
        self._cache: OrderedDict[int, _RunArtifacts] = OrderedDict()
        self._runs: OrderedDict[int, DbtRun] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: DbtCloudSettings) -> CloudProject:
        if settings.job_id is None:
            raise ValueError("PIPEBOT_DBT_CLOUD__JOB_ID is not set")
        return cls(DbtCloudClient.from_settings(settings), settings.job_id)

    def where(self) -> str:
        return f"dbt Cloud job {self.job_id}"

    @property
    def project_key(self) -> str:
        """What pipebot files this project's kept run results under: the account and the
        job whose runs it follows (a CI job of the same project builds elsewhere)."""
        return f"dbt-cloud:{self.client.account_id}:job:{self.job_id}"

    def previous_run(self, run_id: int) -> DbtRun | None:
        """The last finished run of the same job before `run_id`, for "what changed"."""
        job_id = self.client.run(run_id).job_definition_id
        if job_id is None:
            return None
        for run in self.client.runs(job_id=job_id, order_by="-id", limit=PREVIOUS_LOOKBACK):
            if run.id < run_id and run.is_complete:
                return self.cloud_run(run.id)
        return None

    def cloud_run(self, run_id: int) -> DbtRun:
        """Any run of the account as a `DbtRun` (finished runs are cached)."""
        with self._lock:
            cached = self._runs.get(run_id)
        if cached is not None:
            return cached
        run = self.client.run(run_id)
        built = cloud_dbt_run(self.client, run_id, run=run)
        if run.complete:
            with self._lock:
                self._runs[run_id] = built
                while len(self._runs) > 50:
                    self._runs.popitem(last=False)
        return built

    # -- loading ----------------------------------------------------------------------------

    def artifacts_run_id(self) -> int:
        """The run whose artifacts the answers come from."""
        self.view()
        with self._lock:
            assert self._chosen is not None  # view() sets it or raises
            return self._chosen[1]

    def view(self) -> ProjectView:
        now = self._clock()
        with self._lock:
            if self._chosen is not None and now - self._chosen[0] < self.refresh_s:
                cached = self._cache.get(self._chosen[1])
                if cached is not None:
                    return cached.view
        runs = self.client.runs(
            job_id=self.job_id,
            statuses=("success", "error"),
            order_by="-finished_at",
            limit=self.look_back,
        )
        if not runs:
            raise UpstreamNotFound(
                SYSTEM, f"job {self.job_id} has no finished run yet, so there are no artifacts"
            )
        # A run that died before dbt parsed the project (clone or deps failed) has no
        # manifest; the run before it still describes the project.
        for run in runs:
            with self._lock:
                cached = self._cache.get(run.id)
                empty = run.id in self._without_manifest
            if empty:
                continue
            if cached is None:
                cached = self._load(run.id)
                if cached is None:
                    with self._lock:
                        self._without_manifest.add(run.id)
                    continue
                with self._lock:
                    self._cache[run.id] = cached
                    while len(self._cache) > self.keep_runs:
                        self._cache.popitem(last=False)
            with self._lock:
                self._chosen = (now, run.id)
            return cached.view
        raise UpstreamNotFound(
            SYSTEM,
            f"none of the last {len(runs)} finished runs of job {self.job_id} left a "
            f"manifest.json (newest: run {runs[0].id})",
        )

    def _load(self, run_id: int) -> _RunArtifacts | None:
        client = self.client
        run = client.run(run_id)
        steps = run.run_steps or []
        manifest = _parse(
            read_manifest,
            client.run_artifact_or_none(run.id, "manifest.json"),
            f"manifest.json of run {run_id}",
        )
        if manifest is None:
            return None
        catalog: Loaded[Catalog] | None = None
        sources: Loaded[SourcesArtifact] | None = None
        docs_step = _last_step(steps, "docs generate")
        if docs_step is not None or run.has_docs_generated:
            catalog = _parse(
                read_catalog,
                client.run_artifact_or_none(run.id, "catalog.json", step=docs_step),
                f"catalog.json of run {run_id}",
            )
        fresh_step = _last_step(steps, "source freshness")
        if fresh_step is not None or run.has_sources_generated:
            sources = _parse(
                read_sources,
                client.run_artifact_or_none(run.id, "sources.json", step=fresh_step),
                f"sources.json of run {run_id}",
            )
        dbt_run = cloud_dbt_run(client, run_id, run=run)
        with self._lock:
            self._runs[run_id] = dbt_run
        index = ManifestIndex(manifest, catalog, system=SYSTEM)
        # A run of only `docs generate` (or freshness) keeps its command, so it is told as such.
        known = dbt_run.results or dbt_run.command
        view = ProjectView(index, run=dbt_run if known else None, sources=sources)
        return _RunArtifacts(view, run)

    # -- doctor -----------------------------------------------------------------------------

    def check(self) -> Check:
        """The account check, then the job and its latest artifacts."""
        account = self.client.check()
        if not account.ok:
            return account
        try:
            job = self.client.job(self.job_id)
            view = self.view()
        except SourceError as exc:
            return Check(system=SYSTEM, ok=False, detail=exc.reason, target=self.client.base_url)
        as_of = view.as_of()
        when = f", generated {as_of:%Y-%m-%d %H:%M} UTC" if as_of else ""
        return Check(
            system=SYSTEM,
            ok=True,
            detail=f"{account.detail}; job '{job.name}' ({self.job_id}): "
            f"{view.index.loaded.label} of run {self.artifacts_run_id()}{when}",
            target=self.client.base_url,
            version=view.index.metadata.dbt_version or "",
        )


def _last_step(steps: Sequence[RunStep], command: str) -> int | None:
    found = [s.index for s in steps if s.index is not None and s.command == command]
    return found[-1] if found else None


def _implements_port(project: CloudProject) -> DbtProject:
    # Never called: mypy checks here that the class satisfies the core's Protocol.
    return project
