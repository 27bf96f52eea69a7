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
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API = "/api/2.1/unity-catalog/"


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


class FakeDatabricks:
    def __init__(
        self, *, token: str = "dapi-test", default_page: int = 50, empty_pages: bool = False
    ) -> None:
        self.token = token
        self.default_page = default_page
        self.empty_pages = empty_pages
        # catalog -> schema -> table -> TableInfo JSON
        self._catalogs: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._denied: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- content ---------------------------------------------------------------------------

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

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeDatabricks is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeDatabricks is not started")
        return int(self._server.server_address[1])

    def start(self) -> FakeDatabricks:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-databricks", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeDatabricks:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._requests)

    @property
    def served(self) -> int:
        with self._lock:
            return len(self._requests)

    # --- the API ---------------------------------------------------------------------------

    def answer(self, method: str, target: str, authorization: str) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self._requests.append((method, path))
        if path == "/.well-known/databricks-config":
            return 404, {"error_code": "NOT_FOUND", "message": "Not Found"}
        if authorization != f"Bearer {self.token}":
            return 401, {
                "error_code": "UNAUTHENTICATED",
                "message": "Credential was not sent or was of an unsupported type for this API.",
            }
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


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 drops a burst of parallel connections
    daemon_threads = True
    fake: FakeDatabricks


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each body waits for the client's delayed ACK

    def do_GET(self) -> None:
        fake = self.server.fake  # type: ignore[attr-defined]
        status, body = fake.answer(self.command, self.path, self.headers.get("Authorization", ""))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
