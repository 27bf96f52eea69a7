"""`FakeBigQuery`: a local HTTP server answering the BigQuery v2 REST calls pipebot's catalog
makes — ``datasets.list``, ``datasets.get``, ``tables.list``, ``tables.get`` — in the wire shapes
of the real API (../shared/reference/warehouses.md §3, checked against google-cloud-bigquery
3.47 which parses them), for the real `google.cloud.bigquery.Client`::

    with FakeBigQuery("proj") as bq:
        bq.add_table("mart", "orders", [field("id", "INTEGER", "REQUIRED")], num_rows=2)
        client = bigquery.Client(project="proj", credentials=AnonymousCredentials(),
                                 client_options={"api_endpoint": bq.url})

Paging is the API's: ``maxResults`` (default `default_page`, at most `max_page`) and an opaque
``pageToken`` / ``nextPageToken``; ``tables.get`` honours ``fields=`` (a partial response, for
top-level field names). The default and maximum page sizes of the real service are
not documented; 50 and 1,000 are assumptions that make a 5,000-table catalog take many pages.

Errors are the API's JSON (``{"error": {"code", "message", "errors": [{"reason"}], "status"}}``):
404 ``notFound`` for unknown datasets/tables, `deny` a path prefix (403 ``accessDenied``), or
`refuse_all` (401 as for a missing or expired token). `requests` lists ``(method, path)`` of
every request; `served` counts them.

For ``pipebot doctor`` it also answers what Google serves beyond BigQuery, on the same port
(shapes: cloud.google.com/resource-manager/reference/rest/v1/projects/getIamPolicy and
…/bigquery/docs/reference/rest/v2/datasets, read 2026-12-04):

- ``POST /token``: the OAuth endpoint a service-account key's ``token_uri`` names (google-auth
  posts a signed JWT and reads ``{"access_token", "expires_in", "token_type"}``), so a real key
  file signs in; `tokens` lists the service accounts (the JWT's ``iss``) that did;
- ``datasets.get`` carries the dataset's ``access`` list: BigQuery's three default entries
  (projectWriters/Owners/Readers) plus what `grant_dataset` adds;
- ``POST /v1/projects/{p}:getIamPolicy`` (Resource Manager): the `project_policy` bindings, or
  403 ``PERMISSION_DENIED`` while it is None — as for a login with only the documented
  BigQuery roles, which lack ``resourcemanager.projects.getIamPolicy``.

Query jobs: ``jobs.query`` (``POST /queries``, what ``Client.query_and_wait`` sends) and a
dry-run ``jobs.insert`` (``POST /jobs``) over ``INFORMATION_SCHEMA.JOBS`` filled with `add_job`.
The statement runs in DuckDB after sqlglot translates it (`tests.fakes.duck_sql`), with the
request's ``queryParameters``; the answer is in the API's wire shape, with its traps: TIMESTAMP
cells as int64 *microsecond* strings (the client asks ``useInt64Timestamp``), REPEATED cells as
``{"v": [{"v": …}]}``, RECORD cells as ``{"v": {"f": […]}}``. Every query bills
`bytes_per_query` (BigQuery bills INFORMATION_SCHEMA queries at least 10 MB) and is refused
with ``bytesBilledLimitExceeded`` when that is over the request's ``maximumBytesBilled``;
`deny_jobs` answers 403 as for a login without ``bigquery.jobs.listAll``. `query_bodies` keeps
every query request's JSON body.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.duck_sql import DuckViews, SqlError
from tests.fakes.lean_http import LeanFake, LeanHandler

PREFIX = "/bigquery/v2/projects/"
MIN_BILLED = 10 * 1024 * 1024  # what BigQuery bills an INFORMATION_SCHEMA query at least
# INFORMATION_SCHEMA.JOBS, the columns pipebot reads (cloud.google.com/bigquery/docs/
# information-schema-jobs, checked 2026-12-04).
JOBS_COLUMNS = (
    "job_id VARCHAR, project_id VARCHAR, user_email VARCHAR, job_type VARCHAR, "
    "statement_type VARCHAR, state VARCHAR, "
    "error_result STRUCT(reason VARCHAR, location VARCHAR, message VARCHAR), "
    "creation_time TIMESTAMPTZ, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, "
    "total_bytes_processed BIGINT, total_bytes_billed BIGINT, total_slot_ms BIGINT, "
    "labels STRUCT(key VARCHAR, value VARCHAR)[], "
    "referenced_tables STRUCT(project_id VARCHAR, dataset_id VARCHAR, table_id VARCHAR)[], "
    "query VARCHAR, cache_hit BOOLEAN, reservation_id VARCHAR"
)


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
    partial: dict[tuple[str, str], bytes] = dataclass_field(default_factory=dict)  # `fields=`
    # datasets.get `access`: BigQuery's defaults for a new dataset (the creator's entry left out)
    access: list[dict[str, str]] = dataclass_field(
        default_factory=lambda: [
            {"role": "WRITER", "specialGroup": "projectWriters"},
            {"role": "OWNER", "specialGroup": "projectOwners"},
            {"role": "READER", "specialGroup": "projectReaders"},
        ]
    )


class FakeBigQuery(LeanFake):
    name = "fake-bigquery"

    def __init__(
        self, project: str = "pipebot-test", *, default_page: int = 50, max_page: int = 1000
    ) -> None:
        self.project = project
        self.default_page = default_page
        self.max_page = max_page
        self._datasets: dict[str, _Dataset] = {}
        self._denied: dict[str, str] = {}
        self._refuse: str | None = None
        super().__init__()
        self._jobs: DuckViews | None = None
        self._jobs_denied = False
        self.bytes_per_query = MIN_BILLED
        self.query_bodies: list[dict[str, Any]] = []
        # Resource Manager: None answers 403 (the documented roles may not read the policy).
        self.project_policy: list[dict[str, Any]] | None = None
        self.tokens: list[str] = []  # service accounts that signed in at /token

    # --- content ---------------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        *,
        created: datetime,
        user: str = "dbt@pipebot-test.iam.gserviceaccount.com",
        seconds: float = 1.0,
        queued: float = 0.0,
        bytes_billed: int = 0,
        bytes_processed: int | None = None,
        slot_ms: int = 0,
        labels: dict[str, str] | None = None,
        tables: Sequence[str] = (),
        query: str = "SELECT 1",
        error: tuple[str, str] | None = None,
        statement_type: str = "SELECT",
        job_type: str = "QUERY",
        project: str | None = None,
    ) -> None:
        """One row of INFORMATION_SCHEMA.JOBS (`tables` as "dataset.table"; `error` as
        (reason, message))."""
        started = created + timedelta(seconds=queued)
        row = {
            "job_id": job_id,
            "project_id": project or self.project,
            "user_email": user,
            "job_type": job_type,
            "statement_type": statement_type,
            "state": "DONE",
            "error_result": (
                {"reason": error[0], "location": None, "message": error[1]} if error else None
            ),
            "creation_time": created,
            "start_time": started,
            "end_time": started + timedelta(seconds=seconds),
            "total_bytes_processed": bytes_processed
            if bytes_processed is not None
            else bytes_billed,
            "total_bytes_billed": bytes_billed,
            "total_slot_ms": slot_ms,
            "labels": [{"key": k, "value": v} for k, v in (labels or {}).items()],
            "referenced_tables": [
                {
                    "project_id": self.project,
                    "dataset_id": t.split(".")[0],
                    "table_id": t.split(".")[1],
                }
                for t in tables
            ],
            "query": query,
            "cache_hit": False,
            "reservation_id": None,
        }
        self._views().insert("jobs", [row])

    def deny_jobs(self) -> None:
        """Answer 403 to queries of INFORMATION_SCHEMA.JOBS (no bigquery.jobs.listAll)."""
        self._jobs_denied = True

    def _views(self) -> DuckViews:
        if self._jobs is None:
            self._jobs = DuckViews({"jobs": JOBS_COLUMNS})
        return self._jobs

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
        self._datasets[dataset].partial.clear()

    def grant_dataset(self, dataset: str, role: str, **member: str) -> None:
        """Add an entry to the dataset's access list: ``grant_dataset("shop", "WRITER",
        userByEmail="…")``, or an IAM role with ``iamMember="serviceAccount:…"``."""
        self.add_dataset(dataset)
        self._datasets[dataset].access.append({"role": role, **member})

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

    # --- the API ---------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, body: bytes = b""
    ) -> tuple[int, dict[str, Any] | bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.record(method, path)
        if method == "POST" and path == "/token":
            return 200, self._token(body)
        if self._refuse:
            return _error(401, "UNAUTHENTICATED", "unauthorized", self._refuse)
        if method == "POST" and path == f"/v1/projects/{self.project}:getIamPolicy":
            if self.project_policy is None:
                return _error(
                    403,
                    "PERMISSION_DENIED",
                    "forbidden",
                    "The caller does not have permission",
                )
            return 200, {"version": 1, "etag": "BwYk2k1xQ0E=", "bindings": self.project_policy}
        if method == "POST" and path in (
            f"{PREFIX}{self.project}/queries",
            f"{PREFIX}{self.project}/jobs",
        ):
            return self._query(path.rsplit("/", 1)[-1], json.loads(body or b"{}"))
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
        if "fields" in query:
            return 200, self._partial(dataset, segments[3], query["fields"])
        return 200, resource

    def _query(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """jobs.query (``queries``) or a dry-run jobs.insert (``jobs``) over JOBS."""
        with self._lock:
            self.query_bodies.append(body)
        config = body.get("configuration", {}) if kind == "jobs" else body
        request = config.get("query", {}) if kind == "jobs" else body
        sql = str(request.get("query", ""))
        dry = bool(config.get("dryRun"))
        if kind == "jobs" and not dry:
            return _error(400, "INVALID_ARGUMENT", "invalid", "the fake runs dry-run jobs only")
        location = str(body.get("location") or request.get("location") or "US")
        if self._jobs_denied and "JOBS" in sql.upper():
            return _error(
                403,
                "PERMISSION_DENIED",
                "accessDenied",
                f"Access Denied: Table {self.project}:region-us.INFORMATION_SCHEMA.JOBS: User does "
                "not have permission to query table region-us.INFORMATION_SCHEMA.JOBS, or perhaps "
                "it does not exist.",
            )
        params = {p["name"]: _parameter(p) for p in request.get("queryParameters") or ()}
        try:
            columns, rows = self._views().run(sql, "bigquery", params)
        except SqlError as exc:
            return _error(400, "INVALID_ARGUMENT", "invalidQuery", str(exc))
        reference = {
            "projectId": self.project,
            "jobId": f"job_{uuid.uuid4().hex[:12]}",
            "location": location,
        }
        processed = str(self.bytes_per_query)
        if dry:
            return 200, {
                "kind": "bigquery#job",
                "jobReference": reference,
                "configuration": config,
                "status": {"state": "DONE"},
                "statistics": {
                    "totalBytesProcessed": processed,
                    "query": {"totalBytesProcessed": processed},
                },
            }
        cap = request.get("maximumBytesBilled")
        if cap is not None and self.bytes_per_query > int(cap):
            return _error(
                400,
                "INVALID_ARGUMENT",
                "bytesBilledLimitExceeded",
                f"Query exceeded limit for bytes billed: {cap}. {self.bytes_per_query} or higher "
                "required.",
            )
        fields = [_field(name, kind_) for name, kind_ in columns]
        return 200, {
            "kind": "bigquery#queryResponse",
            "schema": {"fields": fields},
            "jobReference": reference,
            "totalRows": str(len(rows)),
            "rows": [
                {"f": [_cell(value, field_) for value, field_ in zip(row, fields, strict=True)]}
                for row in rows
            ],
            "totalBytesProcessed": processed,
            "totalBytesBilled": processed,
            "jobComplete": True,
            "cacheHit": False,
        }

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
            "access": list(self._datasets[dataset].access),
            "location": "US",
        }

    def _partial(self, dataset: _Dataset, table: str, fields: str) -> bytes:
        """A partial response (the ``fields`` parameter every Google API takes), for
        top-level field names — what pipebot asks for; encoded once per selection."""
        encoded = dataset.partial.get((table, fields))
        if encoded is None:
            wanted = {f.strip() for f in fields.split(",")}
            resource = dataset.tables[table]
            encoded = json.dumps({k: v for k, v in resource.items() if k in wanted}).encode()
            dataset.partial[table, fields] = encoded
        return encoded

    def _token(self, body: bytes) -> dict[str, Any]:
        assertion = parse_qs(body.decode()).get("assertion", [""])[0]
        # The JWT's claims, not verified (the fake trusts any key): who signed in.
        claims = assertion.split(".")[1] if assertion.count(".") == 2 else ""
        issuer = json.loads(base64.urlsafe_b64decode(claims + "==") or b"{}").get("iss", "")
        with self._lock:
            self.tokens.append(str(issuer))
            issued = len(self.tokens)
        return {"access_token": f"ya29.fake-{issued}", "expires_in": 3600, "token_type": "Bearer"}

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


_TYPES = {
    "varchar": "STRING",
    "bigint": "INTEGER",
    "integer": "INTEGER",
    "hugeint": "INTEGER",
    "smallint": "INTEGER",
    "double": "FLOAT",
    "float": "FLOAT",
    "decimal": "FLOAT",
    "boolean": "BOOLEAN",
    "timestamp with time zone": "TIMESTAMP",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _field(name: str, kind: Any) -> dict[str, Any]:
    """A schema field for a DuckDB result type: lists are REPEATED, structs RECORDs."""
    mode = "NULLABLE"
    if kind.id == "list":
        kind, mode = kind.child, "REPEATED"
    if kind.id == "struct":
        return {
            "name": name,
            "type": "RECORD",
            "mode": mode,
            "fields": [_field(child, child_kind) for child, child_kind in kind.children],
        }
    return {"name": name, "type": _TYPES.get(kind.id, "STRING"), "mode": mode}


def _cell(value: Any, field_: dict[str, Any]) -> dict[str, Any]:
    if value is None:
        return {"v": None}
    if field_["mode"] == "REPEATED":
        single = dict(field_, mode="NULLABLE")
        return {"v": [_cell(item, single) for item in value]}
    kind = field_["type"]
    if kind == "RECORD":
        inner = [_cell(value.get(f["name"]), f) for f in field_["fields"]]
        return {"v": {"f": inner}}
    if kind == "TIMESTAMP":
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"v": str((stamp - _EPOCH) // timedelta(microseconds=1))}
    if kind == "DATE":
        return {"v": value.isoformat() if isinstance(value, date) else str(value)}
    if kind == "BOOLEAN":
        return {"v": "true" if value else "false"}
    if kind == "INTEGER":
        return {"v": str(int(value))}
    if kind == "FLOAT":
        return {"v": repr(float(value))}
    return {"v": str(value)}


def _parameter(parameter: dict[str, Any]) -> Any:
    kind = parameter.get("parameterType", {}).get("type", "STRING")
    value = (parameter.get("parameterValue") or {}).get("value")
    if value is None:
        return None
    if kind == "TIMESTAMP":
        return datetime.fromisoformat(str(value).replace(" UTC", "+00:00"))
    if kind == "BOOL":
        return str(value).lower() == "true"
    if kind == "INT64":
        return int(value)
    return str(value)


def _error(code: int, status: str, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


class _Handler(LeanHandler):
    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length))

    def _serve(self, sent: bytes = b"") -> None:
        fake: FakeBigQuery = self.server.fake  # type: ignore[attr-defined]
        status, body = fake.answer(self.command, self.path, sent)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.respond(status, data, "application/json; charset=UTF-8")


FakeBigQuery.handler = _Handler
