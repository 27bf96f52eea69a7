"""`BigQueryCatalog`: a BigQuery project's metadata over the REST API — free, no query, no slot.

INFORMATION_SCHEMA queries bill at least 10 MB each and are never cached, so the catalog comes
from ``datasets.list``, ``tables.list`` (names only) and ``tables.get`` (columns, rows, bytes,
last modification) through google-cloud-bigquery's `Client`. ``tables.get`` is one request per
table, so a schema is described by a bounded thread pool (`concurrency`); every call has a
timeout and retries only within it.

URL: ``bigquery://PROJECT[/DATASET]?location=US`` with, for credentials, one of
``credentials_path=/path/key.json``, ``credentials_base64=…`` (a service-account key) or
nothing (Application Default Credentials). ``api_endpoint=`` points at another endpoint (an
emulator, which then also answers for Resource Manager); over plain ``http://`` credentials
are sent only to this machine (a local emulator or tunnel). The token is asked for read-only
scopes (BigQuery's, and the platform's for the project's IAM policy).

`check` (``pipebot doctor``) also reads who the service account is granted what: each
dataset's access list (``datasets.get``) and the project's IAM policy (Resource Manager
``projects.getIamPolicy``, which the documented roles may not read: then project-level roles
are reported as not checked), judged by `privileges.bigquery_abilities`.

What BigQuery does not know stays ``None``: a view's rows and bytes. The table's and the
columns' descriptions are their comments.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote, urlsplit

from bot import metrics
from bot.errors import ConfigError, SourceError
from bot.facts import Column, Columns, Table
from integrations.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from integrations.warehouse import privileges
from integrations.warehouse._rest import CONNECTOR, ParsedUrl, RestCatalog, sdk_call
from integrations.warehouse.guard import SYSTEM

if TYPE_CHECKING:
    from google.cloud.bigquery import Client

logger = logging.getLogger(__name__)

OPERATIONS = (
    "datasets.list",
    "tables.list",
    "tables.get",
    "datasets.get",
    "projects.getIamPolicy",
)
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/bigquery.readonly"
# Resource Manager's getIamPolicy (doctor) takes no BigQuery scope; this one is read-only too.
PLATFORM_READ_ONLY_SCOPE = "https://www.googleapis.com/auth/cloud-platform.read-only"
SCOPES = (READ_ONLY_SCOPE, PLATFORM_READ_ONLY_SCOPE)
RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The tag BigQuery keeps on every job pipebot would start (it starts none for the catalog).
LABELS = {"app": "pipebot"}
DEFAULT_ENDPOINT = "https://bigquery.googleapis.com"
PAGE_SIZE = 1000  # tables.list / datasets.list page size asked for
EXAMPLE = "bigquery://my-project/analytics?location=US"
_KNOWN = ("location", "credentials_path", "credentials_base64", "api_endpoint")
_INSTALL = "BigQuery support is not installed: pip install 'pipebot[bigquery]'"

# REST field types as the SQL names INFORMATION_SCHEMA.COLUMNS and dbt use.
_STANDARD_TYPES = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "RECORD": "STRUCT",
}
_KINDS = {
    "TABLE": "table",
    "VIEW": "view",
    "MATERIALIZED_VIEW": "materialized view",
    "EXTERNAL": "external table",
    "SNAPSHOT": "snapshot",
}

T = TypeVar("T")


class BigQueryCatalog(RestCatalog):
    """Read-only catalog of one BigQuery project; schemas are its datasets.

    `schemas` scopes it to those datasets (else every dataset the credentials may list);
    `statement_timeout` bounds each API call including its retries; `row_cap` bounds the
    relations `tables` returns; `concurrency` bounds the ``tables.get`` calls in flight.
    """

    dialect = "bigquery"
    schema_word = "dataset"

    def __init__(
        self,
        project: str,
        schemas: Sequence[str] = (),
        *,
        location: str | None = None,
        credentials: Any = None,
        api_endpoint: str | None = None,
        client: Client | None = None,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
        concurrency: int = 16,
    ) -> None:
        super().__init__(schemas, statement_timeout=statement_timeout, row_cap=row_cap)
        if not project:
            raise ConfigError(f"the BigQuery URL names no project; expected e.g. {EXAMPLE}")
        if concurrency < 1:
            raise ConfigError("BigQuery concurrency must be at least 1")
        _require_sdk()
        from google.api_core.retry import Retry
        from google.cloud import bigquery

        self.project = project
        self.location = location
        self.concurrency = concurrency
        self.where = f"BigQuery project {project}" + (f" ({location})" if location else "")
        self._getter: _TablesGet | None = None
        self._resource_manager = (api_endpoint or RESOURCE_MANAGER).rstrip("/")
        if client is None:
            if credentials is None:
                credentials = _default_credentials()
            client = _client(project, location, credentials, api_endpoint, concurrency)
            endpoint = api_endpoint or DEFAULT_ENDPOINT
            proxied, bundle = _transport_settings(endpoint)
            if not proxied:
                self._getter = _TablesGet(endpoint, credentials, self.statement_timeout, bundle)
        self._client = client
        self._credentials = credentials if credentials is not None else client._credentials
        self._bigquery = bigquery
        self._retry: Retry = bigquery.DEFAULT_RETRY.with_timeout(self.statement_timeout)
        # Wrapped once: a Retry wraps a function anew on every call otherwise.
        self._table_get = self._retry(self._getter.get) if self._getter is not None else None
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="bigquery-tables-get")
        self._closed = threading.Event()
        metrics.declare_connector(CONNECTOR, OPERATIONS)

    @classmethod
    def from_url(
        cls,
        url: str,
        schemas: Sequence[str] = (),
        *,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
    ) -> BigQueryCatalog:
        _require_sdk()
        parsed = ParsedUrl(url, scheme="bigquery", known=_KNOWN, example=EXAMPLE)
        if parsed.user or parsed.password:
            raise ConfigError(
                "a bigquery:// URL carries no user or password: use credentials_path=, "
                "credentials_base64= or Application Default Credentials"
            )
        if len(parsed.path) > 1:
            raise ConfigError(f"a bigquery:// URL names at most one dataset; e.g. {EXAMPLE}")
        options = parsed.options
        endpoint = options.get("api_endpoint") or None
        credentials = _credentials(options, endpoint=endpoint)
        return cls(
            parsed.host,
            [*parsed.path, *schemas],
            location=options.get("location") or None,
            credentials=credentials,
            api_endpoint=endpoint,
            statement_timeout=statement_timeout,
            row_cap=row_cap,
        )

    @property
    def last_altered_means(self) -> str:
        return "tables.get lastModifiedTime: the last change to the table's data or definition"

    @property
    def client(self) -> Client:
        """The API client, shared with the usage reader (`integrations.warehouse.usage`)."""
        return self._client

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._getter is not None:
            self._getter.close()
        self._client.close()  # type: ignore[no-untyped-call]

    # --- the REST calls ----------------------------------------------------------------

    def _list_schemas(self) -> list[str]:
        def call() -> list[str]:
            return sorted(
                d.dataset_id
                for d in self._client.list_datasets(
                    self.project,
                    page_size=PAGE_SIZE,
                    retry=self._retry,
                    timeout=self.statement_timeout,
                )
            )

        return self._call("datasets.list", f"list the datasets of project {self.project}", call)

    def _list_names(self, schema: str) -> list[str]:
        def call() -> list[str]:
            return sorted(
                t.table_id
                for t in self._client.list_tables(
                    f"{self.project}.{schema}",
                    page_size=PAGE_SIZE,
                    retry=self._retry,
                    timeout=self.statement_timeout,
                )
            )

        return self._call("tables.list", f"list the tables of dataset {schema}", call)

    def _describe(self, schema: str, names: Sequence[str] | None) -> list[Table]:
        if names is None:
            names = self._list_names(schema)[: self.row_cap + 1]
        if self._closed.is_set():
            raise UpstreamUnavailable(SYSTEM, f"the catalog of {self.where} is closed")
        # One share of the names per pool thread, not one task per name: 5,000 futures would
        # wake this thread 5,000 times to hand the GIL around.
        shares = [names[i :: self.concurrency] for i in range(min(self.concurrency, len(names)))]
        answers = self._pool.map(lambda share: [self._get(schema, n) for n in share], shares)
        described = dict(zip((n for share in shares for n in share), chain(*answers), strict=True))
        # A table dropped between the listing and its tables.get is simply gone.
        return [t for t in (described[n] for n in names) if t is not None]

    def _get(self, schema: str, name: str) -> Table | None:
        def call() -> Table | None:
            try:
                if self._table_get is not None:
                    resource = self._table_get(self.project, schema, name)
                else:
                    resource = self._client.get_table(
                        f"{self.project}.{schema}.{name}",
                        retry=self._retry,
                        timeout=self.statement_timeout,
                    ).to_api_repr()
            except self._not_found():
                return None
            return _to_table(self.project, resource)

        return self._call("tables.get", f"describe {schema}.{name}", call)

    # --- doctor: the service account's roles ---------------------------------------------

    def _write_abilities(self, schemas: Sequence[str]) -> tuple[list[privileges.WriteAbility], str]:
        member = self._member()
        if member is None:
            return [], (
                "roles not checked: the credentials are not a service account's (user "
                "credentials name no member to look for)"
            )
        datasets = {dataset: self._access(dataset) for dataset in schemas}
        policy = self._project_policy()
        unchecked = (
            ""
            if policy is not None
            else "project-level roles not checked: the login may not read the project's IAM "
            "policy (as with the documented roles)"
        )
        return privileges.bigquery_abilities(member, policy or {}, datasets), unchecked

    def _member(self) -> str | None:
        """``serviceAccount:EMAIL`` of the credentials, when they are a service account's.
        (Compute Engine credentials say "default" until refreshed; the catalog's calls before
        this one refreshed them.)"""
        email = getattr(self._credentials, "service_account_email", None)
        return f"serviceAccount:{email}" if isinstance(email, str) and "@" in email else None

    def _access(self, dataset: str) -> list[dict[str, Any]]:
        def call() -> list[dict[str, Any]]:
            found = self._client.get_dataset(
                f"{self.project}.{dataset}", retry=self._retry, timeout=self.statement_timeout
            )
            return [dict(entry.to_api_repr()) for entry in found.access_entries]

        return self._call("datasets.get", f"read the access list of dataset {dataset}", call)

    def _project_policy(self) -> dict[str, Any] | None:
        """The project's IAM policy, or None when the login may not read it (403)."""
        from google.api_core import exceptions

        url = f"{self._resource_manager}/v1/projects/{quote(self.project, safe='')}:getIamPolicy"
        session: Any = self._client._http

        def call() -> dict[str, Any] | None:
            response = session.post(
                url,
                json={"options": {"requestedPolicyVersion": 3}},
                timeout=self.statement_timeout,
            )
            if response.status_code == 403:
                return None
            if response.status_code != 200:
                raise exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
            policy: dict[str, Any] = response.json()
            return policy

        return self._call(
            "projects.getIamPolicy", f"read the IAM policy of project {self.project}", call
        )

    def _not_found(self) -> type[BaseException]:
        from google.api_core.exceptions import NotFound

        return NotFound

    def _version(self) -> str:
        from google.cloud.bigquery import __version__

        return f"BigQuery API v2 (google-cloud-bigquery {__version__})"

    def _call(self, operation: str, doing: str, run: Callable[[], T]) -> T:
        return sdk_call(operation, run, lambda exc: _translate(exc, doing, self.where))


# --- building the client -------------------------------------------------------------------


def _require_sdk() -> None:
    try:
        import google.api_core.retry
        import google.auth
        import google.cloud.bigquery  # noqa: F401
    except ImportError:
        raise ConfigError(_INSTALL) from None


class _TablesGet:
    """``tables.get`` over one kept-alive connection per pool thread, spoken as plain HTTP/1.1.

    The same request the SDK makes, with the same token (google-auth `before_request`) and the
    SDK's errors and retry predicate, asking only for the fields the catalog maps (``fields=``,
    the API's partial response: a view's SQL and the rest stay on the server). Why not the SDK:
    google-cloud-bigquery over requests spends ~1 ms of CPU per call, and `http.client` still
    ~0.3 ms (it parses every header block with the `email` package): for 5,000 tables that is
    seconds of GIL that no thread pool can overlap (bench/bench_warehouse_rest.py). This reader
    takes ~0.05 ms: a status line, header lines, then a Content-Length or chunked body.
    Used only without an HTTP proxy configured for the endpoint (the SDK path honours one).
    """

    def __init__(self, endpoint: str, credentials: Any, timeout: float, ca_bundle: str) -> None:
        from google.auth.transport.requests import Request

        parts = urlsplit(endpoint)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        default_port = self._port == (443 if self._https else 80)
        self._host_header = self._host if default_port else f"{self._host}:{self._port}"
        self._base = endpoint.rstrip("/")
        self._credentials = credentials
        self._refresh = Request()
        self._timeout = timeout
        self._ca_bundle = ca_bundle
        self._context: ssl.SSLContext | None = None
        self._local = threading.local()
        self._opened: list[_Connection] = []
        self._lock = threading.Lock()
        self._user_agent = f"pipebot google-cloud-bigquery/{_sdk_version()}"

    def get(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        from google.api_core import exceptions

        path = "/bigquery/v2/projects/{}/datasets/{}/tables/{}".format(
            *(quote(part, safe="") for part in (project, dataset, table))
        )
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        with self._lock:  # a token refresh must happen once, not once per thread
            self._credentials.before_request(self._refresh, "GET", self._base + path, headers)
        request = (
            f"GET {path}?{_TABLE_QUERY} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode("latin-1")
        connection = self._connection()
        try:
            connection.socket.sendall(request)
            status, reason, body, keep = _read_response(connection.reader)
        except (OSError, ValueError) as exc:
            # Forget the connection (a kept-alive one the server closed, say); the retry opens
            # a new one.
            self._drop(connection)
            if isinstance(exc, TimeoutError):
                raise
            raise ConnectionError(f"tables.get failed: {type(exc).__name__}") from exc
        if not keep:
            self._drop(connection)
        if status == 200:
            found: dict[str, Any] = json.loads(body)
            return found
        try:
            error = json.loads(body).get("error", {})
        except ValueError:
            error = {}
        raise exceptions.from_http_status(  # type: ignore[no-untyped-call]
            status, str(error.get("message") or reason), errors=error.get("errors") or []
        )

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            raw = socket.create_connection((self._host, self._port), timeout=self._timeout)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._https:
                if self._context is None:
                    self._context = ssl.create_default_context(cafile=self._ca_bundle)
                raw = self._context.wrap_socket(raw, server_hostname=self._host)
            connection = _Connection(raw, raw.makefile("rb"))
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        self._local.connection = None
        connection.close()

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


# What the catalog maps of a table (`_to_table`); prettyPrint=false drops the indentation.
_TABLE_QUERY = (
    "fields="
    + quote("tableReference,type,schema,numRows,numBytes,lastModifiedTime,description", safe="")
    + "&prettyPrint=false"
)
_MAX_LINE = 65536
_MAX_HEADERS = 100


@dataclass
class _Connection:
    socket: socket.socket
    reader: BinaryIO

    def close(self) -> None:
        self.reader.close()
        self.socket.close()


def _read_response(reader: BinaryIO) -> tuple[int, str, bytes, bool]:
    """(status, reason, body, whether the connection stays open) of one HTTP/1.1 response."""
    while True:
        line = reader.readline(_MAX_LINE)
        if not line:
            raise ConnectionError("the server closed the connection")
        version, _, rest = line.rstrip(b"\r\n").partition(b" ")
        status = int(rest[:3])
        headers: dict[bytes, bytes] = {}
        for _ in range(_MAX_HEADERS):
            line = reader.readline(_MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ValueError("too many response headers")
        if status >= 200:  # 1xx: an interim response; the real one follows
            break
    keep = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        body = _read_chunked(reader)
    elif b"content-length" in headers:
        length = int(headers[b"content-length"])
        body = reader.read(length)
        if len(body) != length:
            raise ConnectionError("the response ended early")
    else:
        body, keep = reader.read(), False  # the body ends with the connection
    if headers.get(b"content-encoding", b"").lower() == b"gzip":
        body = gzip.decompress(body)
    return status, rest[4:].decode("latin-1"), body, keep


def _read_chunked(reader: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(reader.readline(_MAX_LINE).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        chunk = reader.read(size)
        if len(chunk) != size:
            raise ConnectionError("the response ended early")
        parts.append(chunk)
        reader.readline(_MAX_LINE)


def _transport_settings(endpoint: str) -> tuple[bool, str]:
    """(a proxy is configured for `endpoint`, the CA bundle) — as requests, the SDK's
    transport, reads them from the environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE)."""
    import requests

    settings = requests.Session().merge_environment_settings(endpoint, {}, None, None, None)
    scheme = urlsplit(endpoint).scheme
    verify = settings.get("verify")
    bundle = verify if isinstance(verify, str) else requests.utils.DEFAULT_CA_BUNDLE_PATH
    return bool((settings.get("proxies") or {}).get(scheme)), bundle


def _sdk_version() -> str:
    from google.cloud.bigquery import __version__

    return str(__version__)


def _client(
    project: str,
    location: str | None,
    credentials: Any,
    api_endpoint: str | None,
    concurrency: int,
) -> Client:
    import requests
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import bigquery

    # AuthorizedSession adds no header for AnonymousCredentials.
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    # One pooled connection per tables.get in flight: urllib3's default of 10 would make
    # the pool open and drop connections beyond it.
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    options = {"api_endpoint": api_endpoint} if api_endpoint else None
    return bigquery.Client(
        project=project,
        credentials=credentials,
        _http=session,
        location=location,
        client_options=options,
        default_query_job_config=bigquery.QueryJobConfig(labels=dict(LABELS)),
    )


def _credentials(options: dict[str, str] | Any, *, endpoint: str | None = None) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2 import service_account

    path = options.get("credentials_path")
    encoded = options.get("credentials_base64")
    if path and encoded:
        raise ConfigError(
            "give credentials_path or credentials_base64 in the BigQuery URL, not both"
        )
    if endpoint and endpoint.startswith("http://"):
        if not (path or encoded):
            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        # A token in clear is only acceptable to this machine (a local emulator or tunnel).
        if urlsplit(endpoint).hostname not in _LOOPBACK:
            raise ConfigError(
                "BigQuery credentials are never sent over plain http:// (api_endpoint) "
                "except to this machine"
            )
    try:
        if path:
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=list(SCOPES)
            )
        if encoded:
            info = json.loads(base64.b64decode(encoded, validate=True))
            return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=list(SCOPES)
            )
    except FileNotFoundError:
        raise ConfigError(f"BigQuery credentials_path {path} does not exist") from None
    except (ValueError, binascii.Error, KeyError, TypeError) as exc:
        what = f"credentials_path {path}" if path else "credentials_base64"
        # The exception text can quote the key; only its kind is shown.
        raise ConfigError(
            f"BigQuery {what} is not a service-account key file ({type(exc).__name__})"
        ) from None
    return None


def _default_credentials() -> Any:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError:
        raise ConfigError(
            "no Google credentials found: add credentials_path=/path/key.json to the BigQuery "
            "URL, set GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default "
            "login`"
        ) from None
    return credentials


# --- mapping -------------------------------------------------------------------------------


def _to_table(project: str, resource: dict[str, Any]) -> Table:
    fields = (resource.get("schema") or {}).get("fields") or []
    return Table(
        database=project,
        schema=resource["tableReference"]["datasetId"],
        name=resource["tableReference"]["tableId"],
        kind=_KINDS.get(resource.get("type", "TABLE"), str(resource.get("type", "")).lower()),
        columns=Columns(lambda: _columns(fields), len(fields)),
        row_count=_int(resource.get("numRows")),
        last_altered=_millis(resource.get("lastModifiedTime")),
        size_bytes=_int(resource.get("numBytes")),
        comment=resource.get("description") or None,
    )


def _columns(fields: list[dict[str, Any]]) -> tuple[Column, ...]:
    return tuple(
        Column(
            field["name"],
            data_type(field),
            field.get("mode", "NULLABLE") == "NULLABLE",
            position,
            field.get("description") or None,
        )
        for position, field in enumerate(fields, start=1)
    )


def data_type(field: dict[str, Any]) -> str:
    """A REST schema field's type in standard SQL, as INFORMATION_SCHEMA.COLUMNS writes it:
    ``INT64``, ``NUMERIC(12, 2)``, ``ARRAY<STRING>``, ``STRUCT<city STRING, zip STRING>``."""
    name = str(field.get("type", ""))
    name = _STANDARD_TYPES.get(name, name)
    if name == "STRUCT":
        inner = ", ".join(f"{f['name']} {data_type(f)}" for f in field.get("fields") or [])
        name = f"STRUCT<{inner}>"
    elif "precision" in field:
        scale = f", {field['scale']}" if "scale" in field else ""
        name = f"{name}({field['precision']}{scale})"
    elif "maxLength" in field:
        name = f"{name}({field['maxLength']})"
    if field.get("mode") == "REPEATED":
        return f"ARRAY<{name}>"
    return name


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _millis(value: Any) -> datetime | None:
    millis = _int(value)
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC)


# --- errors --------------------------------------------------------------------------------


def _translate(exc: BaseException, doing: str, where: str) -> SourceError:
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, api.RetryError | TimeoutError | requests.Timeout):
        return UpstreamUnavailable(
            SYSTEM,
            f"BigQuery did not answer in time to {doing} at {where} "
            "(PIPEBOT_WAREHOUSE__STATEMENT_TIMEOUT)",
        )
    if isinstance(exc, requests.ConnectionError):
        return UpstreamUnavailable(
            SYSTEM, f"cannot reach BigQuery to {doing} ({type(exc).__name__})"
        )
    if isinstance(exc, auth.RefreshError | auth.DefaultCredentialsError):
        return UpstreamAuthError(
            SYSTEM,
            f"Google refused the credentials while trying to {doing}: renew the service-account "
            "key or the application-default login",
        )
    if isinstance(exc, api.GoogleAPICallError):
        message = _api_message(exc)
        code = int(exc.code) if exc.code is not None else None
        reasons = {str(e.get("reason", "")) for e in exc.errors if isinstance(e, dict)}
        if code == 401:
            return UpstreamAuthError(
                SYSTEM,
                f"BigQuery rejected the credentials (401) trying to {doing}: {message}",
                status=code,
            )
        if code == 403 and not reasons & {"rateLimitExceeded", "quotaExceeded"}:
            return UpstreamAuthError(
                SYSTEM,
                f"BigQuery refused to {doing} (403): {message} — grant the service account "
                "roles/bigquery.metadataViewer on the dataset (deploy/warehouse-bigquery-role.sh)",
                status=code,
            )
        if code == 404:
            return UpstreamNotFound(SYSTEM, f"BigQuery cannot {doing}: {message}")
        if code is not None and (code in {403, 429} or code >= 500):
            return UpstreamUnavailable(
                SYSTEM, f"BigQuery is unavailable ({code}) to {doing}: {message}", status=code
            )
        return UpstreamError(SYSTEM, f"BigQuery failed to {doing} ({code}): {message}", status=code)
    return UpstreamError(SYSTEM, f"BigQuery failed to {doing}: {type(exc).__name__}")


def _api_message(exc: Any) -> str:
    message = str(getattr(exc, "message", "") or "")
    return message.splitlines()[0][:300] if message else type(exc).__name__
