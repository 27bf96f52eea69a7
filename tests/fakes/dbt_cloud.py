"""A local fake of the dbt Cloud Admin API v2, built from the OpenAPI spec, for connector tests.

dbt Cloud is SaaS, so this stands in for it on ``127.0.0.1:<free port>``, speaking the same wire
protocol: the ``{data, status, extra}`` envelope, ``Authorization: Token …`` (or ``Bearer``) with
401s for a missing or wrong token, 403 for another account, limit/offset pagination capped at
100 with ``extra.pagination.total_count``, the run, job, step, failure-details and artifact
endpoints, and 404s. Artifacts are the REAL files of a `DbtBuild` of the sample project, served
per run step (``?step=``) the way dbt Cloud keeps them.

It watches like a read-only observer would: every request is recorded, and a method other than
GET/HEAD (or a Discovery GraphQL document that is not a pure ``query``) is answered 405 and kept
in `writes`, so tests can assert that none ever arrived::

    with FakeDbtCloud(build=dbt_build) as fake:
        client = DbtCloudClient(
            base_url=fake.base_url, account_id=fake.account_id, token=fake.token
        )
        ...
        assert fake.writes == []

The shop account has three jobs: 1001 "Daily shop build" (seed, build, source freshness, docs
generate — its newest run, `fake.latest_run_id`, is the real build and errored), 1002 "CI checks"
and 1003 "Hourly freshness"; 130 finished runs plus one still running.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

from tests.stack.dbt_stack import DbtBuild

ACCOUNT_ID = 1
PROJECT_ID = 10
ENVIRONMENT_ID = 100
DAILY_JOB = 1001
CI_JOB = 1002
FRESHNESS_JOB = 1003
STATUS_HUMANIZED = {
    1: "Queued",
    2: "Starting",
    3: "Running",
    10: "Success",
    20: "Error",
    30: "Cancelled",
}
PAGE_CAP = 100


@dataclass(frozen=True, kw_only=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: bytes = b""


@dataclass(kw_only=True)
class FakeStep:
    index: int
    name: str
    status: int
    logs: str = ""
    artifacts: Path | None = None  # the target/ files as this step left them

    @property
    def dbt_command(self) -> str:
        return self.name.split("`")[1] if "`" in self.name else ""


@dataclass(kw_only=True)
class FakeRun:
    id: int
    job_id: int
    status: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[FakeStep] = field(default_factory=list)
    cause: str = "Kicked off by the scheduler"
    cause_category: str = "scheduled"
    git_sha: str = "3f2c1ab"


JOBS: dict[int, dict[str, Any]] = {
    DAILY_JOB: {
        "name": "Daily shop build",
        "job_type": "scheduled",
        "execute_steps": ["dbt seed", "dbt build", "dbt source freshness"],
        "generate_docs": True,
        "run_generate_sources": False,
        "schedule": {"cron": "0 6 * * *", "date": {"type": "custom_cron"}},
    },
    CI_JOB: {
        "name": "CI checks",
        "job_type": "ci",
        "execute_steps": ["dbt build --select state:modified+"],
        "generate_docs": False,
        "run_generate_sources": False,
        "schedule": None,
    },
    FRESHNESS_JOB: {
        "name": "Hourly freshness",
        "job_type": "scheduled",
        "execute_steps": ["dbt source freshness"],
        "generate_docs": False,
        "run_generate_sources": False,
        "schedule": {"cron": "0 * * * *", "date": {"type": "custom_cron"}},
    },
}


class FakeDbtCloud:
    """The fake server; use as a context manager (or `start()` / `stop()`)."""

    def __init__(
        self,
        *,
        build: DbtBuild | None = None,
        token: str = "dbtc_fake_service_token_9f8e7d",
        account_id: int = ACCOUNT_ID,
        now: datetime | None = None,
    ) -> None:
        self.build = build
        self.token = token
        self.account_id = account_id
        self.now = now or (build.built_at if build and build.built_at else datetime.now(UTC))
        self.requests: list[Recorded] = []
        self.writes: list[Recorded] = []
        self.runs: dict[int, FakeRun] = {}
        self._lock = threading.Lock()
        self._throttle: list[tuple[int, str]] = []  # (status, Retry-After) for the next requests
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.latest_run_id = 0
        self._make_history()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake dbt Cloud is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeDbtCloud:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeDbtCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test controls ------------------------------------------------------------------------

    def throttle(self, times: int = 1, *, retry_after: str = "1", status: int = 429) -> None:
        """Answer the next `times` requests with `status` (429 by default) and Retry-After."""
        with self._lock:
            self._throttle.extend([(status, retry_after)] * times)

    def paths(self, method: str = "GET") -> list[str]:
        with self._lock:
            return [r.path for r in self.requests if r.method == method]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def publish_run(self, *, status: int = 10, artifacts: bool = True) -> FakeRun:
        """A newer run of the daily job, finished after all others, with the same artifacts
        (or, with ``artifacts=False``, one that died while cloning the repository)."""
        with self._lock:
            # latest_run_id stays the newest run that has artifacts.
            previous = self.runs[self.latest_run_id]
            newest = max(self.runs)
            finished = max(r.finished_at for r in self.runs.values() if r.finished_at)
            run = FakeRun(
                id=newest + 1,
                job_id=DAILY_JOB,
                status=status,
                created_at=finished + timedelta(minutes=1),
                started_at=finished + timedelta(minutes=2),
                finished_at=finished + timedelta(minutes=3),
                steps=[
                    FakeStep(
                        index=s.index,
                        name=s.name,
                        status=s.status,
                        logs=s.logs,
                        artifacts=s.artifacts,
                    )
                    for s in previous.steps
                ]
                if artifacts
                else [FakeStep(index=1, name="Clone git repository", status=20, logs="timeout")],
            )
            self.runs[run.id] = run
            if artifacts:
                self.latest_run_id = run.id
            return run

    def publish_ci_run(self, build: DbtBuild, *, pull_request: int = 152) -> FakeRun:
        """A finished run of the CI job with `build`'s artifacts per step (a pull request's
        build, say), newer than every other run; its status is the build's."""
        with self._lock:
            finished = max(r.finished_at for r in self.runs.values() if r.finished_at)
            steps = self._setup_steps()
            for built in build.steps:
                steps.append(
                    FakeStep(
                        index=3 + built.index,
                        name=f"Invoke dbt with `{built.command}`",
                        status=10 if built.success else 20,
                        logs=_step_logs(built.artifacts_dir, built.command),
                        artifacts=built.artifacts_dir,
                    )
                )
            run = FakeRun(
                id=max(self.runs) + 1,
                job_id=CI_JOB,
                status=20 if any(s.status == 20 for s in steps) else 10,
                created_at=finished + timedelta(minutes=1),
                started_at=finished + timedelta(minutes=2),
                finished_at=finished + timedelta(minutes=6),
                steps=steps,
                cause=f"CI run for pull request #{pull_request}",
                cause_category="ci",
            )
            self.runs[run.id] = run
            return run

    # -- data ---------------------------------------------------------------------------------

    def _make_history(self) -> None:
        """130 finished runs over ~40 days, newest = the real build, plus one running CI run."""
        now = self.now
        run_id = 70_000
        history: list[FakeRun] = []
        for day in range(40, 0, -1):
            start = now - timedelta(days=day, hours=-6)
            # Every ninth daily run errored: yesterday's incident is not the first one.
            status = 20 if day % 9 == 0 else 10
            history.append(self._simple_run(run_id, DAILY_JOB, start, status, "dbt build"))
            run_id += 1
        for n in range(50):
            start = now - timedelta(days=30, hours=-n * 13)
            status = (10, 10, 20, 10, 30)[n % 5]
            run = self._simple_run(
                run_id, CI_JOB, start, status, "dbt build --select state:modified+"
            )
            run.cause, run.cause_category = f"CI run for pull request #{100 + n}", "ci"
            history.append(run)
            run_id += 1
        for n in range(39):
            start = now - timedelta(hours=39 - n, minutes=30)
            status = 20 if n % 13 == 0 else 10
            history.append(
                self._simple_run(run_id, FRESHNESS_JOB, start, status, "dbt source freshness")
            )
            run_id += 1
        history.append(self._real_run(run_id, now))
        self.latest_run_id = run_id
        run_id += 1
        running = FakeRun(
            id=run_id,
            job_id=CI_JOB,
            status=3,
            created_at=now - timedelta(minutes=2),
            started_at=now - timedelta(minutes=1),
            finished_at=None,
            steps=[FakeStep(index=1, name="Clone git repository", status=3)],
            cause="CI run for pull request #151",
            cause_category="ci",
        )
        history.append(running)
        self.runs = {run.id: run for run in history}

    @staticmethod
    def _setup_steps() -> list[FakeStep]:
        return [
            FakeStep(index=1, name="Clone git repository", status=10, logs="Cloned main."),
            FakeStep(index=2, name="Create profile from connection DuckDB", status=10, logs="ok"),
            FakeStep(index=3, name="Invoke dbt with `dbt deps`", status=10, logs="Nothing to do"),
        ]

    def _simple_run(
        self, run_id: int, job_id: int, start: datetime, status: int, command: str
    ) -> FakeRun:
        steps = self._setup_steps()
        steps.append(
            FakeStep(
                index=4,
                name=f"Invoke dbt with `{command}`",
                status=status,
                logs="Completed successfully" if status == 10 else "Completed with errors",
            )
        )
        return FakeRun(
            id=run_id,
            job_id=job_id,
            status=status,
            created_at=start,
            started_at=start + timedelta(seconds=20),
            finished_at=start + timedelta(minutes=4),
            steps=steps,
        )

    def _real_run(self, run_id: int, now: datetime) -> FakeRun:
        steps = self._setup_steps()
        if self.build is not None:
            for built in self.build.steps:
                steps.append(
                    FakeStep(
                        index=3 + built.index,
                        name=f"Invoke dbt with `{built.command}`",
                        status=10 if built.success else 20,
                        logs=_step_logs(built.artifacts_dir, built.command),
                        artifacts=built.artifacts_dir,
                    )
                )
        status = 20 if any(s.status == 20 for s in steps) else 10
        return FakeRun(
            id=run_id,
            job_id=DAILY_JOB,
            status=status,
            created_at=now - timedelta(minutes=3),
            started_at=now - timedelta(minutes=2, seconds=40),
            finished_at=now,
            steps=steps,
        )

    # -- payloads -----------------------------------------------------------------------------

    def job_payload(self, job_id: int) -> dict[str, Any]:
        job = JOBS[job_id]
        return {
            "id": job_id,
            "account_id": self.account_id,
            "project_id": PROJECT_ID,
            "environment_id": ENVIRONMENT_ID,
            "name": job["name"],
            "description": "",
            "dbt_version": "1.11.16",
            "execute_steps": job["execute_steps"],
            "generate_docs": job["generate_docs"],
            "run_generate_sources": job["run_generate_sources"],
            "job_type": job["job_type"],
            "state": 1,
            "schedule": job["schedule"],
            "settings": {"threads": 4, "target_name": "prod"},
            "triggers": {
                "github_webhook": job["job_type"] == "ci",
                "schedule": job["schedule"] is not None,
                "git_provider_webhook": False,
                "on_merge": False,
            },
            "execution": {"timeout_seconds": 0},
        }

    def step_payload(self, run: FakeRun, step: FakeStep) -> dict[str, Any]:
        return {
            "id": run.id * 100 + step.index,
            "run_id": run.id,
            "account_id": self.account_id,
            "index": step.index,
            "name": step.name,
            "status": step.status,
            "status_humanized": STATUS_HUMANIZED[step.status],
            "logs": step.logs,
            "debug_logs": "",
            "log_path": None,
            "debug_log_path": None,
        }

    def run_payload(self, run: FakeRun, related: set[str]) -> dict[str, Any]:
        duration = (run.finished_at or self.now) - run.created_at
        payload: dict[str, Any] = {
            "id": run.id,
            "trigger_id": run.id + 500_000,
            "account_id": self.account_id,
            "environment_id": ENVIRONMENT_ID,
            "project_id": PROJECT_ID,
            "job_definition_id": run.job_id,
            "status": run.status,
            "status_humanized": STATUS_HUMANIZED[run.status],
            "status_message": None if run.status != 20 else "dbt command failed",
            "dbt_version": "1.11.16",
            "git_branch": "main",
            "git_sha": run.git_sha,
            "created_at": _iso(run.created_at),
            "updated_at": _iso(run.finished_at or self.now),
            "dequeued_at": _iso(run.started_at),
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "last_checked_at": _iso(run.finished_at or self.now),
            "duration": str(int(duration.total_seconds())),
            "duration_humanized": f"{int(duration.total_seconds()) // 60} minutes",
            "in_progress": run.status in (1, 2, 3),
            "is_complete": run.status in (10, 20, 30),
            "is_success": run.status == 10,
            "is_error": run.status == 20,
            "is_cancelled": run.status == 30,
            "is_running": run.status == 3,
            "href": f"{self.base_url}/deploy/{self.account_id}/projects/{PROJECT_ID}"
            f"/runs/{run.id}/",
            "has_docs_generated": any(s.dbt_command == "dbt docs generate" for s in run.steps),
            "has_sources_generated": any("source freshness" in s.name for s in run.steps),
            "artifacts_saved": any(s.artifacts for s in run.steps),
            "blocked_by": [],
            "can_retry": run.status == 20,
        }
        if "trigger" in related:
            payload["trigger"] = {
                "id": run.id + 500_000,
                "cause": run.cause,
                "cause_category": run.cause_category,
                "job_definition_id": run.job_id,
                "git_branch": "main",
                "git_sha": run.git_sha,
            }
        if "job" in related:
            payload["job"] = self.job_payload(run.job_id)
        if "run_steps" in related:
            payload["run_steps"] = [self.step_payload(run, s) for s in run.steps]
        return payload


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _step_logs(artifacts: Path, command: str) -> str:
    """A short dbt-like log for a step, from the run_results it left."""
    path = artifacts / "run_results.json"
    if command == "dbt source freshness" and (artifacts / "sources.json").is_file():
        path = artifacts / "sources.json"
    if not path.is_file():
        return f"Running {command}"
    results = json.loads(path.read_text()).get("results", [])
    lines = [f"Running with dbt {command}"]
    for n, result in enumerate(results, start=1):
        lines.append(
            f"{n} of {len(results)} {str(result.get('status')).upper()} {result['unique_id']}"
        )
    return "\n".join(lines)


# --- HTTP --------------------------------------------------------------------------------------


def _envelope(data: Any, code: int = 200, message: str = "Success!") -> dict[str, Any]:
    return {
        "data": data,
        "status": {
            "code": code,
            "is_success": code < 400,
            "user_message": message,
            "developer_message": "",
        },
    }


def _related(query: dict[str, list[str]]) -> set[str]:
    """``include_related`` in every form seen in clients: ``a,b``, repeated, ``['a','b']``."""
    found: set[str] = set()
    for value in query.get("include_related", []):
        for part in value.strip("[]").split(","):
            name = part.strip().strip("'\"")
            if name:
                found.add(name)
    return found


def _ints(values: list[str]) -> list[int]:
    found: list[int] = []
    for value in values:
        for part in value.strip("[]").split(","):
            if part.strip():
                found.append(int(part))
    return found


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDbtCloud
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    # -- dispatch -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        recorded = Recorded(
            method=method,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            authorization=self.headers.get("Authorization"),
            body=body,
        )
        with fake._lock:
            fake.requests.append(recorded)
            throttled = fake._throttle.pop(0) if fake._throttle else None
        if throttled is not None:
            status, retry_after = throttled
            self._json(
                status,
                _envelope(None, status, "Too many requests, slow down."),
                headers={"Retry-After": retry_after},
            )
            return
        if method not in ("GET", "HEAD"):
            if method == "POST" and recorded.path == "/graphql" and _query_only(body):
                self._graphql(body)
                return
            with fake._lock:
                fake.writes.append(recorded)
            self._json(
                405, _envelope(None, 405, f"{method} is not allowed here: read-only observer")
            )
            return
        problem = self._auth_problem()
        if problem is not None:
            self._json(401, _envelope(None, 401, problem))
            return
        self._route(recorded, head=method == "HEAD")

    def _auth_problem(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme not in ("Token", "Bearer") or not value.strip():
            return "Authentication credentials were not provided."
        if value.strip() != self.fake.token:
            return "Invalid token."
        return None

    def _route(self, request: Recorded, *, head: bool) -> None:
        fake = self.fake
        segments = [s for s in request.path.split("/") if s]
        if segments[:2] != ["api", "v2"] or len(segments) < 3 or segments[2] != "accounts":
            self._not_found()
            return
        if len(segments) == 3:
            self._json(200, {**_envelope([self._account()]), "extra": _extra({}, "id", 1, 1)})
            return
        try:
            account = int(segments[3])
        except ValueError:
            self._not_found()
            return
        if account != fake.account_id:
            self._json(403, _envelope(None, 403, "You do not have access to this account."))
            return
        rest = segments[4:]
        query = request.query
        if not rest:
            self._json(200, _envelope(self._account()))
        elif rest == ["runs"]:
            self._list_runs(query)
        elif rest[0] == "runs" and len(rest) >= 2 and rest[1].isdigit():
            self._run_routes(int(rest[1]), rest[2:], query, head=head)
        elif rest == ["jobs"]:
            self._list_jobs(query)
        elif rest[0] == "jobs" and len(rest) >= 2 and rest[1].isdigit():
            self._job_routes(int(rest[1]), rest[2:], head=head)
        elif rest[0] == "steps" and len(rest) == 2 and rest[1].isdigit():
            self._step(int(rest[1]))
        else:
            self._not_found()

    def _account(self) -> dict[str, Any]:
        return {
            "id": self.fake.account_id,
            "name": "Shop Analytics",
            "plan": "enterprise",
            "state": 1,
        }

    # -- runs ---------------------------------------------------------------------------------

    def _list_runs(self, query: dict[str, list[str]]) -> None:
        fake = self.fake
        with fake._lock:
            runs = list(fake.runs.values())
        filters: dict[str, Any] = {"account_id": fake.account_id}
        for key, attribute in (("job_definition_id", "job_id"), ("status", "status")):
            if key in query:
                wanted = int(query[key][0])
                filters[key] = wanted
                runs = [r for r in runs if getattr(r, attribute) == wanted]
        if "status__in" in query:
            statuses = _ints(query["status__in"])
            filters["status__in"] = statuses
            runs = [r for r in runs if r.status in statuses]
        if "environment_id" in query:
            runs = [r for r in runs if int(query["environment_id"][0]) == ENVIRONMENT_ID]
        if "project_id" in query:
            runs = [r for r in runs if int(query["project_id"][0]) == PROJECT_ID]
        order_by = query.get("order_by", ["id"])[0]
        runs = _ordered(runs, order_by)
        related = _related(query)
        self._page([fake.run_payload(r, related) for r in runs], query, filters, order_by)

    def _run_routes(
        self, run_id: int, rest: list[str], query: dict[str, list[str]], *, head: bool
    ) -> None:
        fake = self.fake
        with fake._lock:
            run = fake.runs.get(run_id)
        if run is None:
            self._not_found()
            return
        if not rest:
            self._json(200, _envelope(fake.run_payload(run, _related(query))))
        elif rest == ["retry"]:
            failed = [s for s in run.steps if s.status == 20]
            # dbt Cloud lists steps that never ran; every step of these runs ran.
            skipped: list[str] = []
            self._json(
                200,
                _envelope(
                    {"failed_step": failed[0].name if failed else None, "skipped_steps": skipped}
                ),
            )
        elif rest == ["artifacts"]:
            last = _artifact_step(run, None)
            if last is None or last.artifacts is None:
                self._json(200, _envelope(None))
                return
            names = sorted(p.name for p in last.artifacts.iterdir())
            names += [
                "compiled/shop/models/marts/fct_orders.sql",
                "run/shop/models/marts/fct_orders.sql",
            ]
            self._json(200, _envelope(names))
        elif rest[0] == "artifacts":
            step = int(query["step"][0]) if "step" in query else None
            self._artifact(_artifact_step(run, step), "/".join(rest[1:]), head=head)
        else:
            self._not_found()

    def _step(self, step_id: int) -> None:
        fake = self.fake
        run = fake.runs.get(step_id // 100)
        step = next((s for s in run.steps if s.index == step_id % 100), None) if run else None
        if run is None or step is None:
            self._not_found()
            return
        payload = fake.step_payload(run, step)
        payload["run_step_command"] = {"run_step_id": step_id, "dbt_command": step.dbt_command}
        self._json(200, _envelope(payload))

    # -- jobs ---------------------------------------------------------------------------------

    def _list_jobs(self, query: dict[str, list[str]]) -> None:
        jobs = [self.fake.job_payload(job_id) for job_id in sorted(JOBS)]
        if "name__icontains" in query:
            needle = query["name__icontains"][0].lower()
            jobs = [j for j in jobs if needle in j["name"].lower()]
        if "project_id" in query:
            jobs = [j for j in jobs if j["project_id"] == int(query["project_id"][0])]
        if "environment_id" in query:
            jobs = [j for j in jobs if j["environment_id"] == int(query["environment_id"][0])]
        self._page(
            jobs, query, {"account_id": self.fake.account_id}, query.get("order_by", ["id"])[0]
        )

    def _job_routes(self, job_id: int, rest: list[str], *, head: bool) -> None:
        if job_id not in JOBS:
            self._not_found()
            return
        if not rest:
            self._json(200, _envelope(self.fake.job_payload(job_id)))
        elif rest[0] == "artifacts" and len(rest) > 1:
            with self.fake._lock:
                runs = [r for r in self.fake.runs.values() if r.job_id == job_id and r.finished_at]
            with_files = [r for r in _ordered(runs, "-finished_at") if _artifact_step(r, None)]
            step = _artifact_step(with_files[0], None) if with_files else None
            self._artifact(step, "/".join(rest[1:]), head=head)
        else:
            self._not_found()

    # -- replies ------------------------------------------------------------------------------

    def _page(
        self,
        items: list[dict[str, Any]],
        query: dict[str, list[str]],
        filters: dict[str, Any],
        order_by: str,
    ) -> None:
        limit = min(int(query.get("limit", [PAGE_CAP])[0]), PAGE_CAP)
        offset = int(query.get("offset", ["0"])[0])
        page = items[offset : offset + limit]
        filters = {**filters, "limit": limit, "offset": offset}
        self._json(
            200, {**_envelope(page), "extra": _extra(filters, order_by, len(page), len(items))}
        )

    def _artifact(self, step: FakeStep | None, path: str, *, head: bool) -> None:
        file = step.artifacts / path if step is not None and step.artifacts is not None else None
        if file is None or not file.is_file() or ".." in path:
            self._json(404, _envelope(None, 404, "The requested artifact was not found."))
            return
        content = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if not head:
            self.wfile.write(content)

    def _graphql(self, body: bytes) -> None:
        self._json(200, {"data": {"__typename": "Query"}})

    def _not_found(self) -> None:
        self._json(404, _envelope(None, 404, "The requested resource was not found."))

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        content = json.dumps(payload).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)


def _extra(filters: dict[str, Any], order_by: str, count: int, total: int) -> dict[str, Any]:
    return {
        "filters": filters,
        "order_by": order_by,
        "pagination": {"count": count, "total_count": total},
    }


def _ordered(runs: list[FakeRun], order_by: str) -> list[FakeRun]:
    """Like PostgreSQL: descending order puts runs without a value (still running) first."""
    descending = order_by.startswith("-")
    key = order_by.lstrip("-")
    if key == "id":
        return sorted(runs, key=lambda r: r.id, reverse=descending)
    attribute = {"created_at": "created_at", "finished_at": "finished_at"}.get(key, "created_at")
    missing = [r for r in runs if getattr(r, attribute) is None]
    present = sorted(
        (r for r in runs if getattr(r, attribute) is not None),
        key=lambda r: (getattr(r, attribute), r.id),
        reverse=descending,
    )
    return missing + present if descending else present + missing


def _artifact_step(run: FakeRun, index: int | None) -> FakeStep | None:
    if index is None:
        return run.steps[-1] if run.steps and run.steps[-1].artifacts else None
    return next((s for s in run.steps if s.index == index), None)


def _query_only(body: bytes) -> bool:
    try:
        document = parse(json.loads(body)["query"])
    except (ValueError, KeyError, TypeError, GraphQLError):
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(op.operation is OperationType.QUERY for op in operations)


def runs_of(fake: FakeDbtCloud, job_id: int) -> Iterator[FakeRun]:
    """The fake's runs of one job, newest finished first (for expected values in tests)."""
    yield from _ordered([r for r in fake.runs.values() if r.job_id == job_id], "-finished_at")
