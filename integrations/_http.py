"""`ReadOnlySession`: the only way connectors speak HTTP.

It refuses every method but GET and HEAD before anything leaves the process, except the
explicit, narrow exceptions a connector registers (`AllowedPost`): the Airflow token exchange
and dbt Discovery GraphQL documents that contain only `query` operations. The guard sits in
`send()`, so it also covers prepared requests and redirects.

It also gives every call a timeout, retries 429/5xx with backoff honouring ``Retry-After``
(capped, so a hostile header cannot park a worker for an hour), turns failures into
secret-free errors that name the status and the endpoint, and counts each call in the
connector metrics (`bot.metrics`) under the client method that made it (`Operations`)::

    session = ReadOnlySession(system="Airflow", base_url="http://airflow:8080", timeout=10)
    dags = session.get_json("/api/v2/dags", params={"limit": 100})
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import requests
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot import metrics
from integrations.errors import (
    ReadOnlyRefused,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)

READ_METHODS = frozenset({"GET", "HEAD"})
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_S = 30.0
USER_AGENT = "pipebot (read-only)"
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class AllowedPost:
    """One POST endpoint a connector may call, with a check of the body it may send."""

    path: str
    check: Callable[[bytes], bool]
    why: str


def graphql_query_only(body: bytes) -> bool:
    """True when `body` is a GraphQL request whose document holds only `query` operations."""
    try:
        payload = json.loads(body)
        document = parse(payload["query"])
    except (ValueError, KeyError, TypeError, GraphQLError):
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(op.operation is OperationType.QUERY for op in operations)


@dataclass(frozen=True)
class Operations:
    """How a connector's calls are labelled in metrics: the connector's name, and the client
    method behind each call, recognised by the path it calls (first match wins; "other"
    otherwise). A fixed set of names — never the path itself, whose ids are unbounded::

        Operations.of("airflow", {r"/dags$": "dags", r"/dags/[^/]+$": "dag"})
    """

    connector: str
    routes: tuple[tuple[re.Pattern[str], str], ...] = ()

    @classmethod
    def of(cls, connector: str, routes: Mapping[str, str]) -> Operations:
        return cls(connector, tuple((re.compile(p), name) for p, name in routes.items()))

    def name(self, path: str) -> str:
        for pattern, operation in self.routes:
            if pattern.search(path):
                return operation
        return "other"


def _status_reason(status: int) -> str:
    """An HTTP error status as a `bot.metrics.CONNECTOR_ERRORS` reason."""
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    return "http_5xx" if status >= 500 else "http_4xx"


class _CappedRetry(Retry):
    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER_S)


class ReadOnlySession(requests.Session):
    def __init__(
        self,
        *,
        system: str,
        base_url: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        verify: bool = True,
        allowed_posts: Sequence[AllowedPost] = (),
        operations: Operations | None = None,
    ) -> None:
        super().__init__()
        self.system = system
        self.operations = operations or Operations(system.lower().replace(" ", "_"))
        metrics.declare_connector(
            self.operations.connector, (name for _, name in self.operations.routes)
        )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.verify = verify
        self._allowed = {post.path: post for post in allowed_posts}
        self._recent: deque[str] = deque(maxlen=50)
        self._lock = threading.Lock()
        self.headers["User-Agent"] = USER_AGENT
        retry = _CappedRetry(
            total=retries,
            connect=retries,
            read=0,  # a read timeout is not retried: the server may still be working on it
            status=retries,
            backoff_factor=backoff,
            backoff_max=MAX_RETRY_AFTER_S,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=READ_METHODS,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    # -- the guard ------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        method = (request.method or "GET").upper()
        path = urlsplit(request.url or "").path
        if method not in READ_METHODS:
            allowed = self._allowed.get(path)
            body = (
                request.body
                if isinstance(request.body, bytes)
                else str(request.body or "").encode()
            )
            if method != "POST" or allowed is None or not allowed.check(body):
                raise ReadOnlyRefused(
                    self.system, f"refused {method} {path}: pipebot only reads (nothing was sent)"
                )
        # requests.Session.request passes timeout=None explicitly: setdefault would keep it.
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)

    # -- calls ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

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
        """Make one call; raise a readable `UpstreamError` subclass for failures.

        Statuses in `ok` are returned instead of raised (e.g. a 404 the caller expects).
        """
        invocation = invocation_text(method, path, params)
        with self._lock:
            self._recent.append(invocation)
        operation = self.operations.name(urlsplit(path).path)
        started = time.perf_counter()
        reason: str | None = "error"  # whatever escapes the branches below
        try:
            response = self.request(
                method, self.url(path), params=params, headers=headers, json=json_body, data=data
            )
            if response.status_code >= 400 and response.status_code not in ok:
                reason = _status_reason(response.status_code)
                raise status_error(self.system, invocation, response)
            reason = None
            return response
        except ReadOnlyRefused:
            reason = "refused"
            raise
        except requests.exceptions.Timeout:
            reason = "timeout"
            raise UpstreamUnavailable(
                self.system, f"{invocation} timed out after {self.timeout:g} s"
            ) from None
        except requests.exceptions.RetryError:
            reason = "unavailable"
            raise UpstreamUnavailable(
                self.system, f"{invocation} kept failing after retries"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            why = _connection_reason(exc)
            # A GET's read timeout arrives here too: urllib3 ends it as retries exhausted.
            reason = "timeout" if why == "timed out" else "connection"
            raise UpstreamUnavailable(
                self.system, f"cannot connect to {urlsplit(self.base_url).netloc} ({why})"
            ) from None
        finally:
            metrics.observe_connector(
                self.operations.connector, operation, time.perf_counter() - started, reason
            )

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        response = self.call("GET", path, params=params, headers=headers)
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(
                self.system,
                f"{invocation_text('GET', path, params)} answered {response.status_code} "
                f"with a body that is not JSON",
                status=response.status_code,
            ) from None

    def recent(self) -> list[str]:
        """The last invocations made, oldest first (sources of a reply, audit)."""
        with self._lock:
            return list(self._recent)


def invocation_text(
    method: str, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None
) -> str:
    """``GET /api/v2/dags?limit=100`` — the call as a person would write it."""
    shown = urlsplit(path).path if path.startswith("http") else path
    query = urlencode(
        list(params.items()) if isinstance(params, Mapping) else list(params or ()), doseq=True
    )
    return f"{method.upper()} {shown}" + (f"?{query}" if query else "")


def status_error(system: str, invocation: str, response: requests.Response) -> UpstreamError:
    detail = _detail(response)
    reason = f"{invocation} returned {response.status_code} {response.reason or ''}".rstrip()
    if detail:
        reason += f": {detail}"
    if response.status_code in (401, 403):
        hint = (
            " — check the credentials"
            if response.status_code == 401
            else " — the user lacks permission"
        )
        return UpstreamAuthError(system, reason + hint, status=response.status_code)
    if response.status_code == 404:
        return UpstreamNotFound(system, reason)  # type: ignore[return-value]
    if response.status_code in RETRY_STATUSES:
        return UpstreamUnavailable(system, reason, status=response.status_code)
    return UpstreamError(system, reason, status=response.status_code)


def _detail(response: requests.Response) -> str:
    """The server's own short explanation, if it gave one (Airflow ``detail``, dbt ``status``)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    text: Any = None
    if isinstance(body, dict):
        text = body.get("detail") or body.get("title")
        status = body.get("status")
        if text is None and isinstance(status, dict):
            text = status.get("user_message") or status.get("developer_message")
        if text is None and isinstance(body.get("error"), dict):
            text = body["error"].get("message")
    if text is None:
        return ""
    shown = text if isinstance(text, str) else json.dumps(text, default=str)
    return shown if len(shown) <= 300 else shown[:299] + "…"


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("timed out", "timed out"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
    ):
        if marker in text:
            return reason
    return "connection failed"


def paginate(
    fetch: Callable[[int, int], tuple[list[T], int | None]], *, page_size: int, max_items: int
) -> Iterator[T]:
    """Offset pagination: ``fetch(offset, limit) -> (items, total or None)``.

    Stops at `max_items`, an empty page, or when `total` is reached — never trusting the
    server to honour a `limit` above its own cap.
    """
    offset = 0
    yielded = 0
    while yielded < max_items:
        items, total = fetch(offset, min(page_size, max_items - yielded))
        if not items:
            return
        for item in items:
            yield item
            yielded += 1
            if yielded >= max_items:
                return
        offset += len(items)
        if total is not None and offset >= total:
            return
