"""`BigQueryCatalog`: a BigQuery project's metadata over the REST API — free, no query, no slot.

INFORMATION_SCHEMA queries bill at least 10 MB each and are never cached, so the catalog comes
from ``datasets.list``, ``tables.list`` (names only) and ``tables.get`` (columns, rows, bytes,
last modification) through google-cloud-bigquery's `Client`. ``tables.get`` is one request per
table, so a schema is described by a bounded thread pool (`concurrency`); every call has a
timeout and retries only within it.

URL: ``bigquery://PROJECT[/DATASET]?location=US`` with, for credentials, one of
``credentials_path=/path/key.json``, ``credentials_base64=…`` (a service-account key) or
nothing (Application Default Credentials). ``api_endpoint=`` points at another endpoint (an
emulator); over plain ``http://`` no credentials are sent. The token is asked for the
read-only BigQuery scope.

What BigQuery does not know stays ``None``: a view's rows and bytes. Column descriptions and
the table description are read but `bot.facts` has no field for them yet.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
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
from integrations.warehouse._rest import ParsedUrl, RestCatalog
from integrations.warehouse.guard import SYSTEM

if TYPE_CHECKING:
    from google.cloud.bigquery import Client

logger = logging.getLogger(__name__)

CONNECTOR = "warehouse"
OPERATIONS = ("datasets.list", "tables.list", "tables.get")
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/bigquery.readonly"
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
        if client is None:
            if credentials is None:
                credentials = _default_credentials()
            client = _client(project, location, credentials, api_endpoint, concurrency)
            endpoint = api_endpoint or DEFAULT_ENDPOINT
            proxied, bundle = _transport_settings(endpoint)
            if not proxied:
                self._getter = _TablesGet(endpoint, credentials, self.statement_timeout, bundle)
        self._client = client
        self._bigquery = bigquery
        self._retry: Retry = bigquery.DEFAULT_RETRY.with_timeout(self.statement_timeout)
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
        credentials = _credentials(
            options, plain_http=bool(endpoint and endpoint.startswith("http://"))
        )
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
        found = list(self._pool.map(lambda name: self._get(schema, name), names))
        # A table dropped between the listing and its tables.get is simply gone.
        return [t for t in found if t is not None]

    def _get(self, schema: str, name: str) -> Table | None:
        def call() -> Table | None:
            try:
                if self._getter is not None:
                    resource = self._retry(self._getter.get)(self.project, schema, name)
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

    def _not_found(self) -> type[BaseException]:
        from google.api_core.exceptions import NotFound

        return NotFound

    def _version(self) -> str:
        from google.cloud.bigquery import __version__

        return f"BigQuery API v2 (google-cloud-bigquery {__version__})"

    def _call(self, operation: str, doing: str, call: Callable[[], T]) -> T:
        with metrics.connector_call(CONNECTOR, operation):
            try:
                return call()
            except SourceError:
                raise
            except Exception as exc:
                raise _translate(exc, doing, self.where) from exc


# --- building the client -------------------------------------------------------------------


def _require_sdk() -> None:
    try:
        import google.api_core.retry
        import google.auth
        import google.cloud.bigquery  # noqa: F401
    except ImportError:
        raise ConfigError(_INSTALL) from None


class _TablesGet:
    """``tables.get`` over one kept-alive `http.client` connection per pool thread.

    The same request the SDK makes, with the same token (google-auth `before_request`) and the
    SDK's errors and retry predicate; but google-cloud-bigquery over requests spends ~1 ms of
    CPU per call, which for 5,000 tables is seconds of GIL that no thread pool can overlap.
    Used only without an HTTP proxy configured for the endpoint (the SDK path honours one).
    """

    def __init__(self, endpoint: str, credentials: Any, timeout: float, ca_bundle: str) -> None:
        from google.auth.transport.requests import Request

        parts = urlsplit(endpoint)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._base = endpoint.rstrip("/")
        self._credentials = credentials
        self._refresh = Request()
        self._timeout = timeout
        self._ca_bundle = ca_bundle
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
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
        connection = self._connection()
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            # Forget the connection; the retry opens a new one.
            self._local.connection = None
            connection.close()
            if isinstance(exc, TimeoutError):
                raise
            raise ConnectionError(f"tables.get failed: {type(exc).__name__}") from exc
        if response.status == 200:
            found: dict[str, Any] = json.loads(body)
            return found
        try:
            error = json.loads(body).get("error", {})
        except ValueError:
            error = {}
        raise exceptions.from_http_status(  # type: ignore[no-untyped-call]
            response.status,
            str(error.get("message") or response.reason),
            errors=error.get("errors") or [],
        )

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._https:
                context = ssl.create_default_context(cafile=self._ca_bundle)
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=context
                )
            else:
                connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


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


def _credentials(options: dict[str, str] | Any, *, plain_http: bool) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2 import service_account

    path = options.get("credentials_path")
    encoded = options.get("credentials_base64")
    if path and encoded:
        raise ConfigError(
            "give credentials_path or credentials_base64 in the BigQuery URL, not both"
        )
    if plain_http:
        if path or encoded:
            raise ConfigError(
                "BigQuery credentials are never sent over plain http:// (api_endpoint)"
            )
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    try:
        if path:
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=[READ_ONLY_SCOPE]
            )
        if encoded:
            info = json.loads(base64.b64decode(encoded, validate=True))
            return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[READ_ONLY_SCOPE]
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
        credentials, _project = google.auth.default(scopes=[READ_ONLY_SCOPE])
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
    )


def _columns(fields: list[dict[str, Any]]) -> tuple[Column, ...]:
    return tuple(
        Column(
            field["name"],
            data_type(field),
            field.get("mode", "NULLABLE") == "NULLABLE",
            position,
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
