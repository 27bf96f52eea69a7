"""`AirflowClient`: Airflow 3 (``/api/v2``) and Airflow 2 (``/api/v1``), read-only.

    client = AirflowClient("https://airflow.example.com", username="pipebot", password="…")
    failed = client.runs(states=("failed",), since=now - timedelta(hours=24))
    log = client.task_log("orders_daily", failed[0].run_id, "transform", 1, max_chars=8000)
    log.errors[0].exc_type  # "KeyError"

Every call goes through `ReadOnlySession`: GET only, plus exactly one allowed POST, the
token exchange ``POST /auth/token`` with a body of ``username`` and ``password`` and nothing
else. Airflow 3 takes a JWT (obtained lazily, cached, renewed once on a 401); Airflow 2 takes
basic auth. ``api_version="auto"`` asks ``/api/v2/version`` and then ``/api/v1/version``
(both unauthenticated); a version set by hand that the server does not speak is named as such
on the first 404 (`_explain_404`). Every failure is a `bot.errors.SourceError` subclass.

The two APIs are read into the same facts (docs/airflow.md): durations from start and end
where Airflow 2 gives none, the next run when it is due (never its logical date), runs newest
first by when they ran, and tries counted from the try number where the tries endpoint
(Airflow 2.10+) is missing.

Task logs are streamed, never loaded whole: see `integrations.airflow._logs`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import contextvars
import difflib
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import BaseAdapter

from bot.errors import ConfigError, SourceError
from bot.facts import (
    AirflowHealth,
    Dag,
    DagRun,
    ImportError_,
    RunListing,
    TaskInstance,
    TaskLog,
)
from bot.settings import AirflowSettings
from bot.tools import Check
from integrations._http import (
    AllowedPost,
    Operations,
    ReadOnlySession,
    invocation_text,
    paginate,
)
from integrations.airflow import _mapping
from integrations.airflow._logs import (
    JsonLogStream,
    LogFormatError,
    LogTail,
    TextTail,
    feed_text_content,
    string_tail_budget,
)
from integrations.errors import UpstreamAuthError, UpstreamError, UpstreamNotFound

ApiVersion = Literal["auto", "v2", "v1"]
PAGE_SIZE = 100  # Airflow's default [api] maximum_page_limit
MAX_LOG_PAGES = 5
LOG_CHUNK_BYTES = 64 * 1024
TOKEN_PATH = "/auth/token"
# Range filters whose column is never empty, for runs that may still be queued.
_QUEUED_SAFE_SINCE = {"v2": "run_after_gte", "v1": "updated_at_gte"}
_STARTED_STATES = frozenset({"running", "success", "failed"})


_API = r"/api/v[12]"
_RUN = _API + r"/dags/[^/]+/dagRuns/[^/]+"
# Metric labels: each call under the client method that makes it (ids are percent-encoded,
# so ``[^/]+`` is one id).
OPERATIONS = Operations.of(
    "airflow",
    {
        r"/auth/token$": "token",
        _API + r"/version$": "version",
        _API + r"/(monitor/)?health$": "health",
        _API + r"/dags$": "dags",
        _API + r"/dags/[^/]+$": "dag",
        _API + r"/dags/[^/]+/dagRuns$": "runs",
        _RUN + r"$": "run",
        _RUN + r"/taskInstances$": "task_instances",
        _RUN + r"/taskInstances/[^/]+(/-?\d+)?(/tries)?$": "tries",
        _RUN + r"/taskInstances/[^/]+(/-?\d+)?/logs/[^/]+$": "task_log",
        _API + r"/importErrors$": "import_errors",
    },
)


def token_request_only(body: bytes) -> bool:
    """True for exactly ``{"username": str, "password": str}`` — the token exchange body."""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(payload, dict)
        and set(payload) == {"username", "password"}
        and all(isinstance(value, str) for value in payload.values())
    )


class _Session(ReadOnlySession):
    """`ReadOnlySession` plus two per-thread switches: streamed bodies and call capture."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._local = threading.local()

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        self._local.stream = True
        try:
            yield
        finally:
            self._local.stream = False

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        outer = getattr(self._local, "calls", None)
        calls: list[str] = []
        self._local.calls = calls
        try:
            yield calls
        finally:
            self._local.calls = outer
            if outer is not None:
                outer.extend(calls)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
        ok: Sequence[int] = (),
    ) -> requests.Response:
        calls = getattr(self._local, "calls", None)
        # The token exchange is plumbing, not a source anyone needs to see.
        if calls is not None and not path.endswith(TOKEN_PATH):
            calls.append(invocation_text(method, path, params))
        return super().call(
            method, path, params=params, headers=headers, json_body=json_body, data=data, ok=ok
        )

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if getattr(self._local, "stream", False):
            kwargs["stream"] = True
        return super().request(*args, **kwargs)


def _q(value: str) -> str:
    # Run ids hold ":" and "+"; a "+" left raw would reach Airflow as a space.
    return quote(value, safe="")


class AirflowClient:
    """Read-only Airflow client implementing `bot.ports.Orchestrator`."""

    system = "Airflow"

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        api_version: ApiVersion = "auto",
        timeout: float = 10.0,
        verify_tls: bool = True,
        adapter: BaseAdapter | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        # Never keep credentials that were pasted into the URL; they would end up in messages.
        self.base_url = (
            f"{parts.scheme}://{parts.hostname or ''}"
            + (f":{parts.port}" if parts.port else "")
            + parts.path.rstrip("/")
        )
        self._username = username
        self._password = password
        self._static_token = token
        self._token: str | None = None
        self._api: Literal["v2", "v1"] | None = None if api_version == "auto" else api_version
        # A version set in the settings is trusted until a 404 makes us check it (once).
        self._api_confirmed = api_version == "auto"
        self._version: str | None = None
        self._lock = threading.Lock()
        self.session = _Session(
            system=self.system,
            base_url=self.base_url,
            timeout=timeout,
            verify=verify_tls,
            allowed_posts=(
                AllowedPost(
                    path=parts.path.rstrip("/") + TOKEN_PATH,
                    check=token_request_only,
                    why="Airflow 3 exchanges username and password for a JWT",
                ),
            ),
            operations=OPERATIONS,
        )
        if adapter is not None:
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    @classmethod
    def from_settings(cls, s: AirflowSettings, adapter: BaseAdapter | None = None) -> AirflowClient:
        if s.base_url is None:
            raise ConfigError("Airflow is not configured: PIPEBOT_AIRFLOW__BASE_URL is empty")
        return cls(
            s.base_url,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            token=s.token.get_secret_value() if s.token else None,
            api_version=s.api_version,
            timeout=s.timeout,
            verify_tls=s.verify_tls,
            adapter=adapter,
        )

    def __repr__(self) -> str:
        return f"AirflowClient({self.base_url!r}, api={self._api or 'auto'})"

    @contextlib.contextmanager
    def calls(self) -> Iterator[list[str]]:
        """The upstream calls this thread makes inside the block (token exchange excluded)::

        with client.calls() as made:
            client.dag("orders_daily")
        made  # ["GET /api/v2/dags/orders_daily"]
        """
        with self.session.capture() as made:
            yield made

    # -- the API version and auth ---------------------------------------------------------

    @property
    def api_version(self) -> Literal["v2", "v1"]:
        if self._api is None:
            with self._lock:
                if self._api is None:
                    self._api = self._detect()
        return self._api

    def _detect(self) -> Literal["v2", "v1"]:
        api: Literal["v2", "v1"]
        for api in ("v2", "v1"):
            response = self.session.call("GET", f"/api/{api}/version", ok=(404, 405))
            version = _json_or_none(response)
            if response.status_code == 200 and isinstance(version, dict) and version.get("version"):
                self._version = str(version["version"])
                return api
        raise UpstreamNotFound(
            self.system,
            f"no Airflow REST API at {self.base_url}: /api/v2/version and /api/v1/version "
            "were not found — check the base URL",
        )

    def _root(self) -> str:
        return f"/api/{self.api_version}"

    def _explain_404(self, exc: UpstreamNotFound) -> SourceError:
        """A 404 under a forced API version may mean the server speaks the other one.

        Airflow 2 has no ``/api/v2`` and Airflow 3 no ``/api/v1``: every call would answer a
        bare 404, which reads like "no such DAG". Checked once, with the unauthenticated
        version endpoints; the original error stands when the configured API is there.
        """
        if self._api_confirmed:
            return exc
        api = self.api_version
        if self._answers_version(api):
            self._api_confirmed = True
            return exc
        other: Literal["v2", "v1"] = "v1" if api == "v2" else "v2"
        if not self._answers_version(other):
            return exc  # no Airflow API at all here: the 404 says as much as we know
        airflow = f"Airflow {self._version}" if self._version else "this Airflow"
        return UpstreamError(
            self.system,
            f"{self.base_url} has no /api/{api} — {airflow} serves /api/{other}: set "
            f"PIPEBOT_AIRFLOW__API_VERSION={other} (or leave it unset to detect it)",
            status=404,
        )

    def _answers_version(self, api: str) -> bool:
        try:
            response = self.session.call("GET", f"/api/{api}/version", ok=(404, 405))
        except SourceError:
            return False
        version = _json_or_none(response)
        if response.status_code == 200 and isinstance(version, dict) and version.get("version"):
            self._version = str(version["version"])
            return True
        return False

    def _auth_headers(self) -> dict[str, str]:
        if self.api_version == "v1":
            if self._username is None:
                return {}
            pair = f"{self._username}:{self._password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        token = self._static_token or self._token
        if token is None and self._username is not None:
            token = self._fetch_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _fetch_token(self) -> str:
        with self._lock:
            if self._token is not None:
                return self._token
            try:
                response = self.session.call(
                    "POST",
                    TOKEN_PATH,
                    json_body={"username": self._username, "password": self._password or ""},
                )
            except UpstreamNotFound as exc:  # Airflow 2 has no token endpoint
                raise self._explain_404(exc) from None
            answer = _json_or_none(response)
            token = None
            if isinstance(answer, dict):
                # Simple and FAB auth managers say access_token; older FAB said jwt_token.
                token = answer.get("access_token") or answer.get("jwt_token")
            if not isinstance(token, str) or not token:
                raise UpstreamAuthError(
                    self.system,
                    f"POST {TOKEN_PATH} answered {response.status_code} without a token",
                    status=response.status_code,
                )
            self._token = token
            return token

    def _can_reauthenticate(self) -> bool:
        return self.api_version == "v2" and self._username is not None

    def _get(
        self,
        path: str,
        params: Sequence[tuple[str, Any]] = (),
        *,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        for attempt in (1, 2):
            sent = {**self._auth_headers(), **(headers or {})}
            try:
                with self.session.streaming() if stream else contextlib.nullcontext():
                    return self.session.call("GET", path, params=list(params), headers=sent)
            except UpstreamNotFound as exc:
                raise self._explain_404(exc) from None
            except UpstreamAuthError as exc:
                # An expired JWT answers 401 "Token Expired": renew once, then give up.
                if attempt == 1 and exc.status == 401 and self._can_reauthenticate():
                    with self._lock:
                        self._token = None
                        self._static_token = None
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _get_json(self, path: str, params: Sequence[tuple[str, Any]] = ()) -> Any:
        response = self._get(path, params)
        body = _json_or_none(response)
        if body is None:
            raise UpstreamError(
                self.system,
                f"{invocation_text('GET', path, params)} answered {response.status_code} "
                "with a body that is not JSON",
                status=response.status_code,
            )
        return body

    def _collection(
        self, path: str, key: str, params: Sequence[tuple[str, Any]], *, limit: int
    ) -> Iterator[Mapping[str, Any]]:
        def fetch(offset: int, page: int) -> tuple[list[Mapping[str, Any]], int | None]:
            body = self._get_json(path, [*params, ("limit", page), ("offset", offset)])
            items = body.get(key) if isinstance(body, dict) else None
            total = body.get("total_entries") if isinstance(body, dict) else None
            rows = [item for item in items or () if isinstance(item, Mapping)]
            return rows, total if isinstance(total, int) else None

        return paginate(fetch, page_size=min(PAGE_SIZE, max(limit, 1)), max_items=limit)

    # -- Orchestrator ---------------------------------------------------------------------

    def _public(self, path: str) -> requests.Response:
        """A call that needs no credentials (health, version)."""
        try:
            return self.session.call("GET", self._root() + path)
        except UpstreamNotFound as exc:
            raise self._explain_404(exc) from None

    def health(self) -> AirflowHealth:
        path = "/monitor/health" if self.api_version == "v2" else "/health"
        # Health needs no credentials: it answers even when the credentials are wrong.
        body = _json_or_none(self._public(path))
        if not isinstance(body, dict):
            raise UpstreamError(self.system, f"GET {self._root()}{path} did not answer JSON")
        return _mapping.health(body)

    def version(self) -> str:
        if self._version is None:
            body = _json_or_none(self._public("/version"))
            self._version = str(body.get("version", "")) if isinstance(body, dict) else ""
        return self._version

    def dags(self, *, limit: int = 500) -> list[Dag]:
        params = [("order_by", "dag_id")]
        return [
            _mapping.dag(p)
            for p in self._collection(self._root() + "/dags", "dags", params, limit=limit)
        ]

    def dag(self, dag_id: str) -> Dag:
        try:
            return _mapping.dag(self._get_json(f"{self._root()}/dags/{_q(dag_id)}"))
        except UpstreamNotFound:
            # The HTTP call is in the invocation; the person reading needs the name and
            # what is close to it.
            raise UpstreamNotFound(
                self.system, f"Airflow has no DAG `{dag_id}`", self._close_dag_ids(dag_id)
            ) from None

    def _close_dag_ids(self, dag_id: str) -> list[str]:
        try:
            known = [d.dag_id for d in self.dags()]
        except SourceError:
            return []  # suggestions are a courtesy; the not-found answer stands without them
        return close_names(dag_id, known)

    def runs(
        self,
        dag_id: str | None = None,
        *,
        states: Sequence[str] = (),
        since: datetime | None = None,
        limit: int = 25,
    ) -> list[DagRun]:
        api = self.api_version
        # The newest runs by creation (`id` grows as runs are created, on both APIs, and every
        # run has one), then ordered by when they ran (`by_when_ran`). Never by logical date:
        # a run triggered later for an earlier date would read as older.
        params: list[tuple[str, Any]] = [("order_by", "-id")]
        params += [("state", state) for state in states]
        if since is not None:
            # Runs in a started state are asked by start date; when queued runs may match
            # (no state filter, or "queued"), a column that is never empty is used instead.
            started_only = bool(states) and set(states) <= _STARTED_STATES
            column = "start_date_gte" if started_only else _QUEUED_SAFE_SINCE[api]
            if since.tzinfo is None:  # Airflow compares in UTC; a naive time would be guessed
                since = since.replace(tzinfo=UTC)
            params.append((column, since.isoformat()))
        path = f"{self._root()}/dags/{_q(dag_id) if dag_id else '~'}/dagRuns"
        return by_when_ran(
            _mapping.dag_run(p) for p in self._collection(path, "dag_runs", params, limit=limit)
        )

    def runs_since(
        self, since: datetime, *, max_runs: int = 200_000, concurrency: int = 4
    ) -> RunListing:
        """Every run from `since` on across all DAGs (``/dags/~/dagRuns``), pages read
        `concurrency` at a time once the first page has said how many there are.

        Ordered by ascending id: a run created while the pages are read lands after the last
        page, so the offsets of pages read in parallel never shift (newest first, a new run
        would push every later page down by one). A page that cannot be read leaves the
        listing incomplete, with the reason, instead of failing it.
        """
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        path = f"{self._root()}/dags/~/dagRuns"
        params: list[tuple[str, Any]] = [
            ("order_by", "id"),
            (_QUEUED_SAFE_SINCE[self.api_version], since.isoformat()),
        ]

        def page(offset: int, size: int) -> tuple[list[DagRun], int | None]:
            query = [*params, ("limit", size), ("offset", offset)]
            response = self._get(path, query)
            fast = _mapping.dag_run_page(response.content)
            if fast is not None:
                return fast
            body = _json_or_none(response)
            if not isinstance(body, dict):
                raise UpstreamError(
                    self.system,
                    f"{invocation_text('GET', path, query)} answered {response.status_code} "
                    "with a body that is not JSON",
                    status=response.status_code,
                )
            items = body.get("dag_runs")
            total = body.get("total_entries")
            rows = [_mapping.dag_run(i) for i in items or () if isinstance(i, Mapping)]
            return rows, total if isinstance(total, int) else None

        first, total = page(0, PAGE_SIZE)
        requests_made = 1
        pages: dict[int, list[DagRun]] = {0: first}
        problems: list[str] = []
        capped = False
        failed: list[int] = []
        if total is None:
            # No total to plan with (an old or unusual server): one page after another.
            offset = len(first)
            while first and offset < max_runs:
                first, _ = page(offset, PAGE_SIZE)
                requests_made += 1
                pages[offset] = first
                offset += len(first)
            total = offset
        else:
            # The first page's length is the server's own cap when it is lower than ours.
            step = max(1, min(PAGE_SIZE, len(first) or PAGE_SIZE))
            start = max(0, total - max_runs)  # the newest `max_runs`: ids ascend
            if start:
                capped = True
                del pages[0]
                problems.append(
                    f"the period holds {total:,} runs; only the newest {max_runs:,} were read"
                )
            offsets = list(range(start or step, total, step))
            reason = ""
            with ThreadPoolExecutor(
                max_workers=max(1, concurrency), thread_name_prefix="airflow-pages"
            ) as pool:
                futures = {
                    o: pool.submit(contextvars.copy_context().run, page, o, step) for o in offsets
                }
                for offset, future in futures.items():
                    requests_made += 1
                    try:
                        pages[offset] = future.result()[0]
                    except SourceError as exc:
                        failed.append(offset)
                        reason = exc.reason
            if failed:
                problems.append(
                    f"{len(failed)} of {len(offsets) + 1} pages of runs could not be read "
                    f"({reason})"
                )
        seen: set[tuple[str, str]] = set()
        runs: list[DagRun] = []
        for offset in sorted(pages):
            for dag_run in pages[offset]:
                key = (dag_run.dag_id, dag_run.run_id)
                if key not in seen:  # a run deleted meanwhile shifts a page by one
                    seen.add(key)
                    runs.append(dag_run)
        return RunListing(
            runs=tuple(runs),
            total=total,
            complete=not problems,
            problem="; ".join(problems),
            requests=requests_made,
            capped=capped,
            failed_pages=len(failed),
        )

    def _run_path(self, dag_id: str, run_id: str) -> str:
        return f"{self._root()}/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}"

    def run(self, dag_id: str, run_id: str) -> DagRun:
        return _mapping.dag_run(self._get_json(self._run_path(dag_id, run_id)))

    def task_instances(
        self, dag_id: str, run_id: str, *, states: Sequence[str] = ()
    ) -> list[TaskInstance]:
        path = self._run_path(dag_id, run_id) + "/taskInstances"
        params = [("state", state) for state in states]
        rows = self._collection(path, "task_instances", params, limit=10_000)
        return [_mapping.task_instance(p) for p in rows]

    def _ti_path(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
        path = f"{self._run_path(dag_id, run_id)}/taskInstances/{_q(task_id)}"
        return path + (f"/{map_index}" if map_index >= 0 else "")

    def tries(
        self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1
    ) -> list[TaskInstance]:
        """Every try of a task instance, oldest first.

        The tries endpoint is new in Airflow 2.10. Older servers answer it 404: then the task
        instance itself is read and its earlier tries are counted from its try number, each
        marked `inferred` (state unknown), so a retry is never lost — only its details.
        """
        path = self._ti_path(dag_id, run_id, task_id, map_index)
        try:
            body = self._get_json(path + "/tries")
        except UpstreamNotFound:
            # A missing task instance is a 404 here as well: then this raises NotFound too.
            return _tries_counted(_mapping.task_instance(self._get_json(path)))
        rows = body.get("task_instances") if isinstance(body, dict) else None
        tries = [_mapping.task_instance(p) for p in rows or () if isinstance(p, Mapping)]
        return sorted(tries, key=lambda t: t.try_number)

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        max_chars: int = 20_000,
    ) -> TaskLog:
        """The tail of one try's log, read as a stream (see `_logs`).

        A finished try arrives in one response. A running one comes with a continuation
        token; we follow it only while pages bring new content (at most `MAX_LOG_PAGES`),
        because each page continues where the last ended and we only want the end.
        """
        path = f"{self._run_path(dag_id, run_id)}/taskInstances/{_q(task_id)}/logs/{try_number}"
        base: list[tuple[str, Any]] = [("map_index", map_index)] if map_index >= 0 else []
        tail = LogTail(max_chars)
        token: str | None = None
        for _ in range(MAX_LOG_PAGES):
            params = [*base, ("token", token)] if token else base
            fed, token = self._read_log_page(path, params, tail)
            if not token or not fed or _token_says_end(token):
                break
        return TaskLog(
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            try_number=try_number,
            lines=tail.lines,
            errors=tuple(tail.errors),
            omitted_chars=tail.omitted_chars,
            source="; ".join(dict.fromkeys(tail.sources)),
        )

    def _read_log_page(
        self, path: str, params: Sequence[tuple[str, Any]], tail: LogTail
    ) -> tuple[int, str | None]:
        """Stream one log response into `tail`; return (items read, continuation token)."""
        response = self._get(path, params, headers={"Accept": "application/json"}, stream=True)
        fed = 0
        token: str | None = None
        text: TextTail | None = None
        chunks = response.iter_content(chunk_size=LOG_CHUNK_BYTES)
        try:
            if "json" in response.headers.get("Content-Type", "application/json"):
                for key, value in JsonLogStream(chunks).items():
                    if key == "item":
                        tail.add_item(value)
                        fed += 1
                    elif key == "text":
                        text = text or TextTail(string_tail_budget(tail.max_chars))
                        text.add(value)
                        fed += len(value)
                    elif key == "continuation_token" and isinstance(value, str):
                        token = value
            else:  # text/plain (some Airflow 2 deployments ignore Accept)
                utf8 = codecs.getincrementaldecoder("utf-8")("replace")
                text = TextTail(string_tail_budget(tail.max_chars))
                for chunk in chunks:
                    piece = utf8.decode(chunk)
                    text.add(piece)
                    fed += len(piece)
        except LogFormatError as exc:
            raise UpstreamError(
                self.system,
                f"{invocation_text('GET', path, params)} answered a log we cannot read ({exc})",
                status=response.status_code,
            ) from None
        except requests.RequestException:
            raise UpstreamError(
                self.system,
                f"{invocation_text('GET', path, params)}: the connection broke while reading",
            ) from None
        finally:
            response.close()
        if text is not None:
            feed_text_content(tail, text)
        return fed, token

    def import_errors(self) -> list[ImportError_]:
        rows = self._collection(self._root() + "/importErrors", "import_errors", (), limit=1000)
        return [_mapping.import_error(p) for p in rows]

    # -- pipebot doctor -------------------------------------------------------------------

    def check(self) -> Check:
        """Reachable (health), authenticated and allowed to read (DAGs and runs)."""
        try:
            health = self.health()
            version = self.version()
        except SourceError as exc:
            return Check(
                system=self.system,
                ok=False,
                detail=f"not reachable: {exc.reason}",
                target=self.base_url,
            )
        who = (
            f"user {self._username}"
            if self._username
            else "the token"
            if self._static_token
            else "anonymous"
        )
        for what, path in (("DAGs", "/dags"), ("DAG runs", "/dags/~/dagRuns")):
            try:
                self._get_json(self._root() + path, [("limit", 1)])
            except UpstreamAuthError as exc:
                problem = "not authenticated" if exc.status == 401 else f"{who} may not read {what}"
                return Check(
                    system=self.system,
                    ok=False,
                    detail=f"{problem}: {exc.reason}",
                    target=self.base_url,
                    version=version,
                )
            except SourceError as exc:
                return Check(
                    system=self.system,
                    ok=False,
                    detail=f"reading {what} failed: {exc.reason}",
                    target=self.base_url,
                    version=version,
                )
        detail = f"API {self.api_version} reachable; {who} can read DAGs and DAG runs"
        if not health.healthy:
            detail += (
                f" (but the scheduler is {health.scheduler or 'unknown'}, "
                f"metadatabase {health.metadatabase or 'unknown'})"
            )
        return Check(
            system=self.system, ok=True, detail=detail, target=self.base_url, version=version
        )


MIN_TRIES_VERSION = "2.10"
_NO_TRIES = (
    f"counted from the try number: this Airflow has no tries endpoint "
    f"(new in Airflow {MIN_TRIES_VERSION})"
)


def _tries_counted(ti: TaskInstance) -> list[TaskInstance]:
    """The tries of `ti` when the server cannot list them: the earlier ones, state unknown."""
    earlier = [
        TaskInstance(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            state=None,
            try_number=number,
            max_tries=ti.max_tries,
            map_index=ti.map_index,
            operator=ti.operator,
            owner=ti.owner,
            inferred=_NO_TRIES,
        )
        for number in range(1, ti.try_number)
    ]
    return [*earlier, ti]


_NEVER = datetime.min.replace(tzinfo=UTC)


def by_when_ran(runs: Iterable[DagRun]) -> list[DagRun]:
    """Newest first by when each run ran (its start), never by its logical date.

    Runs that have not started yet come first — they are the most recent thing that happened
    to the DAG — latest due first (v2 ``run_after``), else in the order given (the server's:
    newest created first).
    """
    return sorted(
        runs,
        key=lambda r: (r.start_date is None, r.start_date or r.run_after or _NEVER),
        reverse=True,
    )


def close_names(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to `n` of `known` that look like `name`: spelling, containment, shared words.

    ``orders_dialy`` → ``orders_daily``; ``orders`` → ``orders_daily``; ``daily_orders`` →
    ``orders_daily`` (same words, other order).
    """
    lowered = {k.lower(): k for k in known}
    wanted = name.lower()
    # 0.75, not difflib's 0.6: at 0.6 "shop_refunds" finds "shop_ingest" — a shared prefix is
    # not a likeness, and a wrong suggestion costs more than none.
    found = [lowered[c] for c in difflib.get_close_matches(wanted, list(lowered), n, 0.75)]
    words = {w for w in re.split(r"[^a-z0-9]+", wanted) if len(w) > 2}
    for key, original in lowered.items():
        shared = words & set(re.split(r"[^a-z0-9]+", key))
        if original not in found and (wanted in key or (words and shared == words)):
            found.append(original)
    return found[:n]


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _token_says_end(token: str) -> bool:
    """Airflow 2 always sends a token; its (signed, readable) payload says end_of_log.

    We only read the payload — tokens are never built or changed, the server checks them.
    """
    head = token.split(".", 1)[0]
    try:
        payload = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(payload, dict) and payload.get("end_of_log") is True
