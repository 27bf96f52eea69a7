"""`FakeDatabricks`: a local HTTP server answering the Unity Catalog REST 2.1 calls pipebot's
catalog makes — ``schemas`` list, ``tables`` list and ``tables/{full_name}`` get — in the wire
shapes of the real API (../shared/reference/warehouses.md §5, checked against databricks-sdk
0.167 which parses them), for the real `databricks.sdk.WorkspaceClient`::

    with FakeDatabricks(token="dapi-test") as dbx:
        dbx.add_table("main", "mart", "orders", [column("id", "bigint", nullable=False)])
        w = WorkspaceClient(host=dbx.url, token="dapi-test")

Paging is the API's: ``max_results`` (0 or absent: the server's page, `default_page`; more is
clipped to it) and ``page_token`` / ``next_page_token``. As the API documents, a page may be
empty and still carry a token: with ``empty_pages=True`` every other page is. The server's real
page size is not documented; 50 is an assumption.

``GET /.well-known/databricks-config`` (the SDK's host discovery) is 404, as on workspaces
without it. Calls need ``Authorization: Bearer <token>``, else 401. `deny(catalog, schema)`
answers 403 for that schema. Errors are ``{"error_code", "message"}`` as Unity Catalog sends
them; the codes and messages for missing objects follow the API's (TABLE_DOES_NOT_EXIST,
SCHEMA_DOES_NOT_EXIST, CATALOG_DOES_NOT_EXIST); the 401/403 wording is an assumption.
`requests` lists ``(method, path)`` of every request.

For ``pipebot doctor``: ``GET /api/2.0/preview/scim/v2/Me`` (who the token is: `principal`) and
``GET /api/2.1/unity-catalog/effective-permissions/{type}/{full_name}?principal=`` — the
privileges `grant` gave on the securable and, marked ``inherited_from_type``/``_name``, on its
parents (shapes from docs.databricks.com/api/workspace/grants/geteffective and databricks-sdk
0.167's EffectivePermissionsList, read 2026-12-04; the privileges a catalog's owner has without
a grant are not modelled). `deny_grants` answers 403 there.

SQL: ``POST /api/2.0/sql/statements`` (the SQL Statement Execution API, databricks-sdk's
``statement_execution.execute_statement``) over the system tables ``system.billing.usage`` and
``system.query.history`` filled with `add_usage` / `add_statement`. The statement runs in DuckDB
after sqlglot translates it (`tests.fakes.duck_sql`) with the request's named ``parameters``;
the answer is INLINE ``JSON_ARRAY`` — every cell a string or null — with the manifest's column
types, or ``status.state`` FAILED with the SQL error, as the API sends them (shapes from
docs.databricks.com/api/workspace/statementexecution, checked against databricks-sdk 0.167).
Only the SQL warehouses in `warehouses` exist; `deny_warehouse` answers 403 as without CAN USE,
`deny_system` fails statements on a system schema as without USE SCHEMA. `statements` keeps
each request body.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.duck_sql import DuckViews, SqlError
from tests.fakes.lean_http import LeanFake, LeanHandler

API = "/api/2.1/unity-catalog/"
STATEMENTS = "/api/2.0/sql/statements"
# The columns pipebot reads (docs.databricks.com/admin/system-tables/billing and
# …/system-tables/query-history, checked 2026-12-04).
SYSTEM_TABLES = {
    "usage": "usage_date DATE, usage_start_time TIMESTAMPTZ, usage_end_time TIMESTAMPTZ, "
    "usage_quantity DECIMAL(38, 6), usage_unit VARCHAR, sku_name VARCHAR, "
    "billing_origin_product VARCHAR, workspace_id VARCHAR, "
    "usage_metadata STRUCT(warehouse_id VARCHAR, job_id VARCHAR, cluster_id VARCHAR)",
    "history": "statement_id VARCHAR, executed_by VARCHAR, client_application VARCHAR, "
    "compute STRUCT(type VARCHAR, warehouse_id VARCHAR, cluster_id VARCHAR), "
    "execution_status VARCHAR, error_message VARCHAR, start_time TIMESTAMPTZ, "
    "end_time TIMESTAMPTZ, total_duration_ms BIGINT, waiting_for_compute_duration_ms BIGINT, "
    "waiting_at_capacity_duration_ms BIGINT, total_task_duration_ms BIGINT, read_bytes BIGINT, "
    "statement_text VARCHAR",
}
_TYPE_NAMES = {
    "varchar": "STRING",
    "bigint": "LONG",
    "integer": "INT",
    "hugeint": "DECIMAL",
    "double": "DOUBLE",
    "float": "FLOAT",
    "decimal": "DECIMAL",
    "date": "DATE",
    "timestamp with time zone": "TIMESTAMP",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


def column(
    name: str, type_text: str, *, nullable: bool = True, comment: str | None = None
) -> dict[str, Any]:
    """One column as Unity Catalog lists it (``position`` is filled in by `add_table`)."""
    base = type_text.split("(", maxsplit=1)[0].split("<", maxsplit=1)[0].upper()
    out: dict[str, Any] = {
        "name": name,
        "type_text": type_text,
        "type_name": {"BIGINT": "LONG", "INT": "INT", "STRING": "STRING"}.get(base, base),
        "type_json": json.dumps(
            {"name": name, "type": type_text, "nullable": nullable, "metadata": {}}
        ),
        "nullable": nullable,
    }
    if comment is not None:
        out["comment"] = comment
    return out


class FakeDatabricks(LeanFake):
    name = "fake-databricks"

    def __init__(
        self, *, token: str = "dapi-test", default_page: int = 50, empty_pages: bool = False
    ) -> None:
        self.token = token
        self.default_page = default_page
        self.empty_pages = empty_pages
        # catalog -> schema -> table -> TableInfo JSON
        self._catalogs: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._denied: set[tuple[str, str]] = set()
        super().__init__()
        self.warehouses: set[str] = set()
        self._denied_warehouses: set[str] = set()
        self._denied_system: set[str] = set()
        self._system: DuckViews | None = None
        self.statements: list[dict[str, Any]] = []
        self.principal = "pipebot@example.com"  # who the token is (SCIM Me userName)
        # (securable type, full name) -> privileges granted to `principal` there
        self._grants: dict[tuple[str, str], list[str]] = {}
        self._grants_denied = False

    # --- content ---------------------------------------------------------------------------

    def add_usage(
        self,
        start: datetime,
        quantity: float,
        *,
        warehouse_id: str | None = None,
        job_id: str | None = None,
        product: str = "SQL",
        sku: str = "PREMIUM_SERVERLESS_SQL_COMPUTE_US_EAST",
        unit: str = "DBU",
    ) -> None:
        """One hourly row of system.billing.usage starting at `start`."""
        self._tables().insert(
            "usage",
            [
                {
                    "usage_date": start.date(),
                    "usage_start_time": start,
                    "usage_end_time": start + timedelta(hours=1),
                    "usage_quantity": quantity,
                    "usage_unit": unit,
                    "sku_name": sku,
                    "billing_origin_product": product,
                    "workspace_id": "1234567890123456",
                    "usage_metadata": {
                        "warehouse_id": warehouse_id,
                        "job_id": job_id,
                        "cluster_id": None,
                    },
                }
            ],
        )

    def add_statement(
        self,
        statement_id: str,
        *,
        start: datetime,
        warehouse_id: str,
        user: str = "analyst@example.com",
        seconds: float = 1.0,
        queued: float = 0.0,
        task_seconds: float | None = None,
        read_bytes: int = 0,
        status: str = "FINISHED",
        error: str | None = None,
        text: str = "SELECT 1",
        client: str = "Databricks SQL Editor",
    ) -> None:
        """One row of system.query.history."""
        total_ms = int(seconds * 1000)
        task_ms = int((task_seconds if task_seconds is not None else seconds) * 1000)
        compute = {"type": "WAREHOUSE", "warehouse_id": warehouse_id, "cluster_id": None}
        self._tables().insert(
            "history",
            [
                {
                    "statement_id": statement_id,
                    "executed_by": user,
                    "client_application": client,
                    "compute": compute,
                    "execution_status": status,
                    "error_message": error,
                    "start_time": start,
                    "end_time": start + timedelta(seconds=seconds),
                    "total_duration_ms": total_ms,
                    "waiting_for_compute_duration_ms": int(queued * 1000),
                    "waiting_at_capacity_duration_ms": None,
                    "total_task_duration_ms": task_ms,
                    "read_bytes": read_bytes,
                    "statement_text": text,
                }
            ],
        )

    def deny_warehouse(self, warehouse_id: str) -> None:
        """403 for statements on `warehouse_id`, as for a principal without CAN USE."""
        self._denied_warehouses.add(warehouse_id)

    def deny_system(self, schema: str) -> None:
        """Statements reading system.`schema` fail as without USE SCHEMA on it."""
        self._denied_system.add(schema)

    def _tables(self) -> DuckViews:
        if self._system is None:
            self._system = DuckViews(SYSTEM_TABLES)
        return self._system

    def add_schema(self, catalog: str, schema: str) -> None:
        self._catalogs.setdefault(catalog, {"information_schema": {}}).setdefault(schema, {})

    def add_table(
        self,
        catalog: str,
        schema: str,
        table: str,
        columns: list[dict[str, Any]],
        *,
        table_type: str = "MANAGED",
        updated_at: int = 1_767_225_600_000,
        comment: str | None = None,
    ) -> None:
        self.add_schema(catalog, schema)
        info: dict[str, Any] = {
            "name": table,
            "catalog_name": catalog,
            "schema_name": schema,
            "full_name": f"{catalog}.{schema}.{table}",
            "table_type": table_type,
            "data_source_format": "DELTA" if table_type != "VIEW" else None,
            "columns": [dict(c, position=i) for i, c in enumerate(columns)],
            "owner": "data-eng",
            "created_at": updated_at,
            "created_by": "someone@example.com",
            "updated_at": updated_at,
            "updated_by": "someone@example.com",
            "table_id": f"{abs(hash((catalog, schema, table))):032x}"[:32],
            "metastore_id": "11111111-2222-3333-4444-555555555555",
            "properties": {"delta.minReaderVersion": "1"},
        }
        if table_type == "VIEW":
            info["view_definition"] = "SELECT 1"
            del info["data_source_format"]
        if comment is not None:
            info["comment"] = comment
        self._catalogs[catalog][schema][table] = info

    def deny(self, catalog: str, schema: str) -> None:
        self._denied.add((catalog, schema))

    def grant(self, securable_type: str, full_name: str, *privileges: str) -> None:
        """Grant `principal` privileges (``USE_CATALOG``, ``MODIFY`` …) on a catalog, schema or
        table (``grant("catalog", "main", "USE_CATALOG", "BROWSE")``)."""
        self._grants.setdefault((securable_type.lower(), full_name), []).extend(privileges)

    def deny_grants(self) -> None:
        """Answer 403 to effective-permissions, as to a principal that may not read them."""
        self._grants_denied = True

    # --- the API ---------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, authorization: str, body: bytes = b""
    ) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.record(method, path)
        if path == "/.well-known/databricks-config":
            return 404, {"error_code": "NOT_FOUND", "message": "Not Found"}
        if authorization != f"Bearer {self.token}":
            return 401, {
                "error_code": "UNAUTHENTICATED",
                "message": "Credential was not sent or was of an unsupported type for this API.",
            }
        if method == "POST" and path.rstrip("/") == STATEMENTS:
            return self._execute(json.loads(body or b"{}"))
        if method == "GET" and path == "/api/2.0/preview/scim/v2/Me":
            return 200, {
                "id": "4242424242424242",
                "userName": self.principal,
                "displayName": "pipebot",
                "active": True,
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            }
        if method == "GET" and path.startswith(API + "effective-permissions/"):
            kind, _, name = path[len(API + "effective-permissions/") :].partition("/")
            return self._effective(kind.lower(), name, query.get("principal"))
        if method != "GET" or not path.startswith(API):
            return 404, {
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": f"No API found for '{method} {path}'",
            }
        resource = path[len(API) :]
        if resource == "schemas":
            return self._list_schemas(query)
        if resource == "tables":
            return self._list_tables(query)
        if resource.startswith("tables/"):
            return self._get_table(resource[len("tables/") :])
        return 404, {
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": f"No API found for '{method} {path}'",
        }

    def _execute(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.statements.append(request)
        warehouse = str(request.get("warehouse_id") or "")
        if warehouse in self._denied_warehouses:
            return 403, {
                "error_code": "PERMISSION_DENIED",
                "message": f"You do not have permission to use the SQL warehouse {warehouse}.",
            }
        if warehouse not in self.warehouses:
            return 404, {
                "error_code": "RESOURCE_DOES_NOT_EXIST",
                "message": f"SQL warehouse {warehouse} does not exist.",
            }
        statement_id = f"01ef{uuid.uuid4().hex[:28]}"
        sql = str(request.get("statement", ""))
        for schema in sorted(self._denied_system):
            if f"system.{schema}." in sql.lower():
                return 200, _failed(
                    statement_id,
                    f"[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have USE "
                    f"SCHEMA on Schema 'system.{schema}'. SQLSTATE: 42501",
                )
        params = {p["name"]: _parameter(p) for p in request.get("parameters") or ()}
        try:
            columns, rows = self._tables().run(sql, "databricks", params)
        except SqlError as exc:
            return 200, _failed(statement_id, f"[PARSE_SYNTAX_ERROR] {exc}")
        limit = request.get("row_limit")
        truncated = limit is not None and len(rows) > int(limit)
        rows = rows[: int(limit)] if limit is not None else rows
        described = [
            {
                "name": name,
                "type_text": _TYPE_NAMES.get(kind.id, "STRING"),
                "type_name": _TYPE_NAMES.get(kind.id, "STRING"),
                "position": position,
            }
            for position, (name, kind) in enumerate(columns)
        ]
        data = [[_json_cell(value) for value in row] for row in rows]
        return 200, {
            "statement_id": statement_id,
            "status": {"state": "SUCCEEDED"},
            "manifest": {
                "format": "JSON_ARRAY",
                "schema": {"column_count": len(described), "columns": described},
                "total_chunk_count": 1,
                "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": len(data)}],
                "total_row_count": len(data),
                "truncated": truncated,
            },
            "result": {
                "chunk_index": 0,
                "row_offset": 0,
                "row_count": len(data),
                "data_array": data,
            },
        }

    def _effective(
        self, kind: str, full_name: str, principal: str | None
    ) -> tuple[int, dict[str, Any]]:
        if self._grants_denied:
            return 403, {
                "error_code": "PERMISSION_DENIED",
                "message": f"User does not have MANAGE on {kind.capitalize()} '{full_name}'.",
            }
        parts = full_name.split(".")
        chain = [("catalog", parts[0]), ("schema", ".".join(parts[:2])), ("table", full_name)]
        chain = chain[: {"catalog": 1, "schema": 2, "table": 3}.get(kind, 0)]
        privileges = [
            {"privilege": privilege}
            | (
                {}
                if (parent_kind, parent) == (kind, full_name)
                else {"inherited_from_type": parent_kind.upper(), "inherited_from_name": parent}
            )
            for parent_kind, parent in chain
            for privilege in self._grants.get((parent_kind, parent), [])
        ]
        assignments = (
            [{"principal": self.principal, "privileges": privileges}]
            if privileges and principal in (None, self.principal)
            else []
        )
        return 200, {"privilege_assignments": assignments}

    def _catalog(self, name: str) -> dict[str, dict[str, dict[str, Any]]] | None:
        return self._catalogs.get(name)

    def _page(self, items: list[Any], query: dict[str, str]) -> tuple[list[Any], str | None]:
        asked = int(query.get("max_results") or 0)
        size = self.default_page if asked <= 0 else min(asked, self.default_page)
        token = query.get("page_token", "")
        if self.empty_pages and not token.startswith("e"):
            # An empty page pointing at the real one, as the API may send.
            return [], f"e{token or 'o0'}"
        start = int(token.lstrip("e")[1:] or 0) if token else 0
        end = start + size
        return items[start:end], (f"o{end}" if end < len(items) else None)

    def _list_schemas(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        name = query.get("catalog_name", "")
        catalog = self._catalog(name)
        if catalog is None:
            return 404, {
                "error_code": "CATALOG_DOES_NOT_EXIST",
                "message": f"Catalog '{name}' does not exist.",
            }
        page, token = self._page(sorted(catalog), query)
        body: dict[str, Any] = {
            "schemas": [
                {
                    "name": s,
                    "catalog_name": name,
                    "full_name": f"{name}.{s}",
                    "owner": "data-eng",
                    "catalog_type": "MANAGED_CATALOG",
                }
                for s in page
            ]
        }
        if token:
            body["next_page_token"] = token
        return 200, body

    def _list_tables(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        name, schema = query.get("catalog_name", ""), query.get("schema_name", "")
        catalog = self._catalog(name)
        if catalog is None:
            return 404, {
                "error_code": "CATALOG_DOES_NOT_EXIST",
                "message": f"Catalog '{name}' does not exist.",
            }
        if (name, schema) in self._denied:
            return 403, {
                "error_code": "PERMISSION_DENIED",
                "message": f"User does not have USE SCHEMA on Schema '{name}.{schema}'.",
            }
        tables = catalog.get(schema)
        if tables is None:
            return 404, {
                "error_code": "SCHEMA_DOES_NOT_EXIST",
                "message": f"Schema '{name}.{schema}' does not exist.",
            }
        page, token = self._page(sorted(tables), query)
        omit_columns = query.get("omit_columns") == "true"
        omit_properties = query.get("omit_properties") == "true"
        listed = []
        for table in page:
            info = dict(tables[table])
            if omit_columns:
                info.pop("columns", None)
            if omit_properties:
                info.pop("properties", None)
            listed.append(info)
        body: dict[str, Any] = {"tables": listed}
        if token:
            body["next_page_token"] = token
        return 200, body

    def _get_table(self, full_name: str) -> tuple[int, dict[str, Any]]:
        parts = full_name.split(".")
        missing = (
            404,
            {
                "error_code": "TABLE_DOES_NOT_EXIST",
                "message": f"Table '{full_name}' does not exist.",
            },
        )
        if len(parts) != 3:
            return missing
        catalog = self._catalog(parts[0])
        if catalog is None:
            return 404, {
                "error_code": "CATALOG_DOES_NOT_EXIST",
                "message": f"Catalog '{parts[0]}' does not exist.",
            }
        if (parts[0], parts[1]) in self._denied:
            return 403, {
                "error_code": "PERMISSION_DENIED",
                "message": f"User does not have USE SCHEMA on Schema '{parts[0]}.{parts[1]}'.",
            }
        info = catalog.get(parts[1], {}).get(parts[2])
        return (200, info) if info is not None else missing


def _failed(statement_id: str, message: str) -> dict[str, Any]:
    return {
        "statement_id": statement_id,
        "status": {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": message}},
    }


def _parameter(parameter: dict[str, Any]) -> Any:
    value = parameter.get("value")
    kind = str(parameter.get("type") or "STRING").upper()
    if value is None:
        return None
    if kind == "TIMESTAMP":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind == "BOOLEAN":
        return str(value).lower() == "true"
    if kind in ("INT", "BIGINT", "LONG"):
        return int(value)
    return str(value)


def _json_cell(value: Any) -> str | None:
    """A JSON_ARRAY cell: every value as a string, timestamps in ISO with Z."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Handler(LeanHandler):
    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length))

    def _serve(self, sent: bytes) -> None:
        fake = self.server.fake  # type: ignore[attr-defined]
        status, body = fake.answer(
            self.command, self.path, self.headers.get("Authorization", ""), sent
        )
        data = json.dumps(body).encode()
        self.respond(status, data, "application/json")


FakeDatabricks.handler = _Handler
