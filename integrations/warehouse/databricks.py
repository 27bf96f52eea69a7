"""`DatabricksCatalog`: one Unity Catalog catalog's metadata over the workspace REST API —
no SQL warehouse has to run.

``tables.list`` returns each page of tables with their columns, so a schema of thousands of
tables is a handful of requests (pages may be empty and still carry a ``next_page_token``; the
SDK keeps reading). ``include_browse=true`` lets a principal with only BROWSE see metadata.
Every call goes through databricks-sdk's `WorkspaceClient` (auth, retries within
`statement_timeout`, error types).

URL: ``databricks://token:PAT@HOST?catalog=C&schema=S`` (a personal access token), or
``databricks://CLIENT_ID:CLIENT_SECRET@HOST?catalog=C`` (a service principal, OAuth M2M), or
``databricks://HOST?catalog=C`` (the SDK's default auth: DATABRICKS_* variables, a config
profile …). The catalog makes no query; the spend and query history (`costs`) are read with SQL
on the SQL warehouse named by ``warehouse_id=ID`` or ``http_path=/sql/1.0/warehouses/ID``.

What Unity Catalog's REST API does not say stays ``None``: row counts and sizes (those need
``DESCRIBE DETAIL`` / ``ANALYZE`` on a SQL warehouse). ``updated_at`` is when the table's
definition or properties changed — not its data — and `last_altered_means` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

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
    from databricks.sdk import WorkspaceClient

logger = logging.getLogger(__name__)

OPERATIONS = (
    "schemas.list",
    "tables.list",
    "tables.get",
    "current_user.me",
    "grants.get_effective",
)
# Sent in the User-Agent of every call, so a workspace's audit log shows pipebot's reads.
PRODUCT = "pipebot"
TABLES = "/api/2.1/unity-catalog/tables"
EXAMPLE = "databricks://token:dapi…@adb-123.azuredatabricks.net?catalog=main&schema=analytics"
_KNOWN = ("catalog", "schema", "http_path", "warehouse_id")
_WAREHOUSE_PATH = "/sql/1.0/warehouses/"
_INSTALL = "Databricks support is not installed: pip install 'pipebot[databricks]'"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Unity Catalog's own schema in every catalog: views over the catalog, not data.
_SYSTEM_SCHEMAS = frozenset({"information_schema"})
_KINDS = {
    "MANAGED": "table",
    "EXTERNAL": "external table",
    "VIEW": "view",
    "MATERIALIZED_VIEW": "materialized view",
    "STREAMING_TABLE": "streaming table",
    "FOREIGN": "foreign table",
    "MANAGED_SHALLOW_CLONE": "table",
    "EXTERNAL_SHALLOW_CLONE": "external table",
    "METRIC_VIEW": "metric view",
}

T = TypeVar("T")


class DatabricksCatalog(RestCatalog):
    """Read-only catalog of one Unity Catalog catalog; schemas are its schemas.

    `schemas` scopes it (else every schema the principal may browse); `statement_timeout`
    bounds each call including retries; `row_cap` bounds the relations `tables` returns.
    """

    dialect = "databricks"

    def __init__(
        self,
        host: str,
        catalog: str,
        schemas: Sequence[str] = (),
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        client: WorkspaceClient | None = None,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
        warehouse_id: str | None = None,
    ) -> None:
        super().__init__(schemas, statement_timeout=statement_timeout, row_cap=row_cap)
        # The SQL warehouse the usage views are read on (the catalog itself needs none).
        self.warehouse_id = warehouse_id or None
        if not catalog:
            raise ConfigError(
                f"the Databricks URL names no catalog (?catalog=NAME); e.g. {EXAMPLE}"
            )
        try:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.config import Config
        except ImportError:
            raise ConfigError(_INSTALL) from None
        self.catalog = catalog
        self.host = host
        self.where = f"Databricks {_display_host(host)} catalog {catalog}"
        if client is None:
            try:
                config = Config(
                    host=host,
                    token=token,
                    client_id=client_id,
                    client_secret=client_secret,
                    auth_type="oauth-m2m" if client_id else ("pat" if token else None),
                    http_timeout_seconds=self.statement_timeout,
                    retry_timeout_seconds=max(1, round(self.statement_timeout)),
                    product=PRODUCT,
                    product_version=_version(),
                )
                client = WorkspaceClient(config=config)
            except ValueError as exc:
                # The SDK's message names the auth methods it tried, never a secret's value.
                raise ConfigError(
                    f"cannot set up Databricks auth for {_display_host(host)}: "
                    f"{str(exc).splitlines()[0][:300]}"
                ) from None
        self._client = client
        metrics.declare_connector(CONNECTOR, OPERATIONS)

    @classmethod
    def from_url(
        cls,
        url: str,
        schemas: Sequence[str] = (),
        *,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
    ) -> DatabricksCatalog:
        parsed = ParsedUrl(url, scheme="databricks", known=_KNOWN, example=EXAMPLE)
        if not parsed.host:
            raise ConfigError(f"the Databricks URL names no workspace host; e.g. {EXAMPLE}")
        # A token sent in clear is only acceptable to this machine (a local fake or tunnel).
        scheme = "http" if parsed.host in _LOOPBACK else "https"
        host = f"{scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
        named = [parsed.options["schema"]] if parsed.options.get("schema") else []
        token = client_id = client_secret = None
        if parsed.user == "token":
            if not parsed.password:
                raise ConfigError("the Databricks URL has user 'token' but no token after it")
            token = parsed.password
        elif parsed.user:
            if not parsed.password:
                raise ConfigError(
                    "a Databricks service principal needs CLIENT_ID:CLIENT_SECRET@ in the URL"
                )
            client_id, client_secret = parsed.user, parsed.password
        return cls(
            host,
            parsed.options.get("catalog", ""),
            [*named, *schemas],
            statement_timeout=statement_timeout,
            row_cap=row_cap,
            token=token,
            client_id=client_id,
            client_secret=client_secret,
            warehouse_id=_warehouse_id(parsed.options),
        )

    @property
    def client(self) -> WorkspaceClient:
        """The SDK client, shared with the usage reader (`integrations.warehouse.usage`)."""
        return self._client

    @property
    def last_altered_means(self) -> str:
        return (
            "Unity Catalog updated_at: the last change to the table's definition or "
            "properties, not to its data"
        )

    # --- the REST calls ----------------------------------------------------------------

    def _list_schemas(self) -> list[str]:
        def call() -> list[str]:
            listed = self._client.schemas.list(catalog_name=self.catalog, include_browse=True)
            return sorted(s.name for s in listed if s.name and s.name not in _SYSTEM_SCHEMAS)

        return self._call("schemas.list", f"list the schemas of catalog {self.catalog}", call)

    def _list_names(self, schema: str) -> list[str]:
        return [t.name for t in self._list(schema, omit_columns=True)]

    def _describe(self, schema: str, names: Sequence[str] | None) -> list[Table]:
        if names is not None and len(names) <= 1:
            found = [self._get(schema, name) for name in names]
            return [t for t in found if t is not None]
        tables = self._list(schema, omit_columns=False, stop_after=self.row_cap + 1)
        if names is not None:
            wanted = set(names)
            tables = [t for t in tables if t.name in wanted]
        return tables

    def _list(
        self, schema: str, *, omit_columns: bool, stop_after: int | None = None
    ) -> list[Table]:
        # The SDK's `tables.list` builds a dataclass per column (100,000 for a big schema) that
        # would be thrown away; its API client does the same request, auth and retries.
        query: dict[str, Any] = {
            "catalog_name": self.catalog,
            "schema_name": schema,
            "include_browse": "true",
            "omit_columns": "true" if omit_columns else "false",
            "omit_properties": "true",
            "omit_username": "true",
            "max_results": 0,  # the server's page size
        }

        def call() -> list[Table]:
            tables: list[Table] = []
            while True:
                page = self._client.api_client.do("GET", TABLES, query=query)
                if not isinstance(page, dict):
                    raise UpstreamError(SYSTEM, f"Databricks sent a non-JSON page for {schema}")
                tables.extend(self._to_table(info) for info in page.get("tables") or ())
                token = page.get("next_page_token")
                # A page may be empty and still point at more (documented): only the token ends.
                if not token or (stop_after is not None and len(tables) >= stop_after):
                    break
                query["page_token"] = token
            return sorted(tables, key=lambda t: t.name)

        return self._call("tables.list", f"list the tables of schema {schema}", call)

    def _get(self, schema: str, name: str) -> Table | None:
        from databricks.sdk.errors import NotFound

        def call() -> Table | None:
            try:
                info = self._client.tables.get(
                    f"{self.catalog}.{schema}.{name}", include_browse=True
                )
            except NotFound:
                return None
            return self._to_table(info.as_dict())

        return self._call("tables.get", f"describe {schema}.{name}", call)

    # --- doctor: the principal's privileges -------------------------------------------

    def _write_abilities(self, schemas: Sequence[str]) -> tuple[list[privileges.WriteAbility], str]:
        """Unity Catalog's effective permissions of the principal (SCIM ``Me``: a user's name,
        a service principal's application id) on the catalog and each schema read — granted
        there or inherited from the catalog — beyond USE CATALOG, USE SCHEMA and BROWSE."""
        me = self._call("current_user.me", "name the login", self._client.current_user.me)
        principal = me.user_name or ""
        if not principal:
            return [], "grants not checked: Databricks names no user for the credentials"
        securables = [("catalog", self.catalog)] + [
            ("schema", f"{self.catalog}.{schema}") for schema in schemas
        ]
        found: dict[str, privileges.WriteAbility] = {}
        for kind, name in securables:
            try:
                effective = self._effective(kind, name, principal)
            except UpstreamAuthError as exc:
                if exc.status != 403:
                    raise
                return [], (
                    f"grants not checked: the login may not read its effective permissions on "
                    f"{kind} {name}"
                )
            for ability in privileges.databricks_abilities(principal, f"{kind} {name}", effective):
                # A catalog grant shows again, inherited, on every schema: name it once.
                found.setdefault(ability.revoke, ability)
        return list(found.values()), ""

    def _effective(self, kind: str, name: str, principal: str) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            assignments: list[Any] = []
            token: str | None = None
            while True:
                page = self._client.grants.get_effective(
                    kind, name, principal=principal, max_results=0, page_token=token
                )
                assignments += [a.as_dict() for a in page.privilege_assignments or ()]
                token = page.next_page_token
                if not token:  # pages may be empty and still point at more (documented)
                    return {"privilege_assignments": assignments}

        return self._call(
            "grants.get_effective", f"read the effective permissions on {kind} {name}", call
        )

    def close(self) -> None:
        """The SDK keeps no connection that needs closing."""

    def _to_table(self, info: dict[str, Any]) -> Table:
        """A Unity Catalog TableInfo (JSON) as a `Table`."""
        columns = info.get("columns") or []
        kind = str(info.get("table_type") or "")
        return Table(
            database=self.catalog,
            schema=str(info.get("schema_name") or ""),
            name=str(info.get("name") or ""),
            kind=_KINDS.get(kind, kind.lower().replace("_", " ") or "table"),
            columns=Columns(lambda: _columns(columns), len(columns)),
            row_count=None,
            last_altered=_millis(info.get("updated_at")),
            size_bytes=None,
            comment=info.get("comment") or None,
        )

    def _version(self) -> str:
        from databricks.sdk.version import __version__

        return f"Unity Catalog REST 2.1 (databricks-sdk {__version__})"

    def _call(self, operation: str, doing: str, run: Callable[[], T]) -> T:
        return sdk_call(operation, run, lambda exc: _translate(exc, doing, self.where))


def _columns(columns: list[dict[str, Any]]) -> tuple[Column, ...]:
    ordered = sorted(columns, key=lambda c: int(c.get("position") or 0))
    return tuple(
        Column(
            str(c.get("name") or ""),
            str(c.get("type_text") or str(c.get("type_name") or "").lower()),
            c.get("nullable"),
            None if c.get("position") is None else int(c["position"]) + 1,  # 0-based in UC
            c.get("comment") or None,
        )
        for c in ordered
    )


def _millis(value: Any) -> datetime | None:
    try:
        return None if value is None else datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _warehouse_id(options: Mapping[str, str]) -> str | None:
    """``warehouse_id=ID``, else the id at the end of ``http_path=/sql/1.0/warehouses/ID``."""
    if options.get("warehouse_id"):
        return options["warehouse_id"]
    path = options.get("http_path", "")
    if path.startswith(_WAREHOUSE_PATH) and path[len(_WAREHOUSE_PATH) :].strip("/"):
        return path[len(_WAREHOUSE_PATH) :].strip("/")
    return None


def _display_host(host: str) -> str:
    return host.split("://", 1)[-1]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pipebot")
    except PackageNotFoundError:
        return "0"


def _translate(exc: BaseException, doing: str, where: str) -> SourceError:
    import requests
    from databricks.sdk import errors
    from databricks.sdk.errors.base import DatabricksError

    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # The SDK appends its whole config (secrets masked); the reader needs the API's words.
    message = message.split(" Config: ", 1)[0][:300]
    if isinstance(exc, errors.Unauthenticated):
        return UpstreamAuthError(
            SYSTEM,
            f"Databricks rejected the credentials trying to {doing} at {where}: {message} — "
            "check the token or the service principal's secret",
            status=401,
        )
    if isinstance(exc, errors.PermissionDenied):
        return UpstreamAuthError(
            SYSTEM,
            f"Databricks refused to {doing} at {where}: {message} — grant USE CATALOG, "
            "USE SCHEMA and BROWSE (deploy/warehouse-databricks-grants.sql)",
            status=403,
        )
    if isinstance(exc, errors.NotFound):
        return UpstreamNotFound(SYSTEM, f"Databricks cannot {doing} at {where}: {message}")
    if isinstance(
        exc, errors.TooManyRequests | errors.TemporarilyUnavailable | errors.InternalError
    ):
        return UpstreamUnavailable(SYSTEM, f"Databricks is unavailable to {doing}: {message}")
    if isinstance(exc, TimeoutError | errors.DeadlineExceeded | requests.Timeout):
        return UpstreamUnavailable(
            SYSTEM,
            f"Databricks did not answer in time to {doing} at {where} "
            "(PIPEBOT_WAREHOUSE__STATEMENT_TIMEOUT)",
        )
    if isinstance(exc, requests.ConnectionError):
        return UpstreamUnavailable(
            SYSTEM, f"cannot reach Databricks at {where} to {doing} ({type(exc).__name__})"
        )
    if isinstance(exc, DatabricksError):
        return UpstreamError(SYSTEM, f"Databricks failed to {doing} at {where}: {message}")
    return UpstreamError(SYSTEM, f"Databricks failed to {doing} at {where}: {type(exc).__name__}")
