"""`FakeBigQuery`: a local HTTP server answering the BigQuery v2 REST calls pipebot's catalog
makes — ``datasets.list``, ``datasets.get``, ``tables.list``, ``tables.get`` — in the wire shapes
of the real API (../shared/reference/warehouses.md §3, checked against google-cloud-bigquery
3.47 which parses them), for the real `google.cloud.bigquery.Client`::

    with FakeBigQuery("proj") as bq:
        bq.add_table("mart", "orders", [field("id", "INTEGER", "REQUIRED")], num_rows=2)
        client = bigquery.Client(project="proj", credentials=AnonymousCredentials(),
                                 client_options={"api_endpoint": bq.url})

Paging is the API's: ``maxResults`` (default `default_page`, at most `max_page`) and an opaque
``pageToken`` / ``nextPageToken``. The default and maximum page sizes of the real service are
not documented; 50 and 1,000 are assumptions that make a 5,000-table catalog take many pages.

Errors are the API's JSON (``{"error": {"code", "message", "errors": [{"reason"}], "status"}}``):
404 ``notFound`` for unknown datasets/tables, `deny` a path prefix (403 ``accessDenied``), or
`refuse_all` (401 as for a missing or expired token). `requests` lists ``(method, path)`` of
every request; `served` counts them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/bigquery/v2/projects/"


def field(
    name: str,
    type_: str,
    mode: str = "NULLABLE",
    *,
    description: str | None = None,
    fields: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One schema field as tables.get returns it (``type`` in the legacy names: INTEGER,
    FLOAT, BOOLEAN, RECORD …; ``precision``/``scale``/``maxLength`` as strings)."""
    out: dict[str, Any] = {"name": name, "type": type_, "mode": mode}
    if description is not None:
        out["description"] = description
    if fields is not None:
        out["fields"] = fields
    out.update({k: str(v) for k, v in extra.items()})
    return out


@dataclass
class _Dataset:
    tables: dict[str, dict[str, Any]] = dataclass_field(default_factory=dict)
    # tables.get answers, encoded once: a benchmark asks for thousands.
    encoded: dict[str, bytes] = dataclass_field(default_factory=dict)


class FakeBigQuery:
    def __init__(
        self, project: str = "pipebot-test", *, default_page: int = 50, max_page: int = 1000
    ) -> None:
        self.project = project
        self.default_page = default_page
        self.max_page = max_page
        self._datasets: dict[str, _Dataset] = {}
        self._denied: dict[str, str] = {}
        self._refuse: str | None = None
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content ---------------------------------------------------------------------------

    def add_dataset(self, dataset: str) -> None:
        self._datasets.setdefault(dataset, _Dataset())

    def add_table(
        self,
        dataset: str,
        table: str,
        fields: list[dict[str, Any]],
        *,
        type_: str = "TABLE",
        num_rows: int | None = None,
        num_bytes: int | None = None,
        modified_ms: int | None = None,
        description: str | None = None,
    ) -> None:
        self.add_dataset(dataset)
        resource: dict[str, Any] = {
            "kind": "bigquery#table",
            "etag": f"etag-{dataset}-{table}",
            "id": f"{self.project}:{dataset}.{table}",
            "selfLink": f"https://bigquery.googleapis.com{PREFIX}{self.project}/datasets/{dataset}/tables/{table}",
            "tableReference": {"projectId": self.project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": fields},
            "creationTime": str(modified_ms or 1_767_225_600_000),
            "lastModifiedTime": str(modified_ms or 1_767_225_600_000),
            "type": type_,
            "location": "US",
        }
        if type_ == "VIEW":
            resource["view"] = {"query": "SELECT 1", "useLegacySql": False}
        if num_rows is not None:
            resource["numRows"] = str(num_rows)
        if num_bytes is not None:
            resource["numBytes"] = str(num_bytes)
        if description is not None:
            resource["description"] = description
        self._datasets[dataset].tables[table] = resource
        self._datasets[dataset].encoded[table] = json.dumps(resource).encode()

    def deny(self, path: str) -> None:
        """Answer 403 accessDenied to every request under ``datasets/<path>``."""
        dataset = f"{self.project}:{path.split('/', maxsplit=1)[0]}"
        self._denied[path] = (
            f"Access Denied: Dataset {dataset}: Permission bigquery.tables.list denied on "
            f"dataset {dataset} (or it may not exist)."
        )

    def refuse_all(self) -> None:
        """Answer 401 to everything, as for a missing or expired token."""
        self._refuse = (
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."
        )

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeBigQuery is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeBigQuery:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-bigquery", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeBigQuery:
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

    def answer(self, method: str, target: str) -> tuple[int, dict[str, Any] | bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self._requests.append((method, path))
        if self._refuse:
            return _error(401, "UNAUTHENTICATED", "unauthorized", self._refuse)
        if method != "GET" or not path.startswith(PREFIX):
            return _error(404, "NOT_FOUND", "notFound", f"Not found: {method} {path}")
        project, _, rest = path[len(PREFIX) :].partition("/")
        if project != self.project:
            return _error(404, "NOT_FOUND", "notFound", f"Not found: Project {project}")
        segments = rest.split("/")
        if segments[:1] != ["datasets"]:
            return _error(404, "NOT_FOUND", "notFound", f"Not found: {path}")
        under = "/".join(segments[1:])
        for denied, message in self._denied.items():
            if under == denied or under.startswith(denied + "/"):
                return _error(403, "PERMISSION_DENIED", "accessDenied", message)
        if len(segments) == 1:
            return 200, self._list_datasets(query)
        dataset = self._datasets.get(segments[1])
        if dataset is None:
            return _error(
                404, "NOT_FOUND", "notFound", f"Not found: Dataset {project}:{segments[1]}"
            )
        if len(segments) == 2:
            return 200, self._dataset(segments[1])
        if segments[2] != "tables":
            return _error(404, "NOT_FOUND", "notFound", f"Not found: {path}")
        if len(segments) == 3:
            return 200, self._list_tables(segments[1], dataset, query)
        resource = dataset.encoded.get(segments[3])
        if resource is None or len(segments) > 4:
            return _error(
                404,
                "NOT_FOUND",
                "notFound",
                f"Not found: Table {project}:{segments[1]}.{segments[3]}",
            )
        return 200, resource

    def _page(self, items: list[Any], query: dict[str, str]) -> tuple[list[Any], str | None]:
        size = min(int(query.get("maxResults") or self.default_page), self.max_page)
        start = int(query.get("pageToken", "o0")[1:])
        end = start + size
        return items[start:end], (f"o{end}" if end < len(items) else None)

    def _list_datasets(self, query: dict[str, str]) -> dict[str, Any]:
        page, token = self._page(sorted(self._datasets), query)
        body: dict[str, Any] = {"kind": "bigquery#datasetList", "etag": "datasets"}
        if page:
            body["datasets"] = [
                {
                    "kind": "bigquery#dataset",
                    "id": f"{self.project}:{d}",
                    "datasetReference": {"projectId": self.project, "datasetId": d},
                    "location": "US",
                }
                for d in page
            ]
        if token:
            body["nextPageToken"] = token
        return body

    def _dataset(self, dataset: str) -> dict[str, Any]:
        return {
            "kind": "bigquery#dataset",
            "id": f"{self.project}:{dataset}",
            "datasetReference": {"projectId": self.project, "datasetId": dataset},
            "location": "US",
        }

    def _list_tables(self, name: str, dataset: _Dataset, query: dict[str, str]) -> dict[str, Any]:
        page, token = self._page(sorted(dataset.tables), query)
        body: dict[str, Any] = {
            "kind": "bigquery#tableList",
            "etag": name,
            "totalItems": len(dataset.tables),
        }
        if page:
            body["tables"] = [
                {
                    "kind": "bigquery#table",
                    "id": dataset.tables[t]["id"],
                    "tableReference": dataset.tables[t]["tableReference"],
                    "type": dataset.tables[t]["type"],
                    "creationTime": dataset.tables[t]["creationTime"],
                }
                for t in page
            ]
        if token:
            body["nextPageToken"] = token
        return body


def _error(code: int, status: str, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


class _Server(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops the connections of a burst of parallel clients, who
    # then wait a second to retry the SYN.
    request_queue_size = 128
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pooled connections expect
    # Headers and body go out as two writes; with Nagle on, the second waits for the
    # client's delayed ACK (40 ms a response).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._serve()

    def _serve(self) -> None:
        fake: FakeBigQuery = self.server.fake  # type: ignore[attr-defined]
        status, body = fake.answer(self.command, self.path)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
