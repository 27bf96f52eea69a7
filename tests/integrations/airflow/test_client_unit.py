"""AirflowClient against recorded payloads (fixtures/SOURCES.md), served in-process."""

from __future__ import annotations

import base64
import json
import tracemalloc
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest

from bot.errors import NotFound, SourceAuthError, SourceError
from integrations._http import ReadOnlySession
from integrations.airflow import AirflowClient
from integrations.airflow._logs import JsonLogStream, parse_time
from integrations.airflow._mapping import task_instance
from integrations.errors import ReadOnlyRefused, UpstreamError
from tests.integrations.airflow.served import (
    V2_VERSION,
    Answer,
    Received,
    Route,
    ServedAdapter,
    fixture,
    recorded,
)

BASE = "http://airflow.test"
RUN = "scheduled__2024-05-01T00:00:00+00:00"


def v2_client(
    routes: Mapping[tuple[str, str], Answer | Route], **kwargs: Any
) -> tuple[AirflowClient, ServedAdapter]:
    adapter = ServedAdapter({("GET", "/api/v2/version"): V2_VERSION, **routes})
    token = Answer(201, {"access_token": "jwt-from-server"})
    adapter.routes.setdefault(("POST", "/auth/token"), token)
    client = AirflowClient(BASE, username="viewer", password="viewer", adapter=adapter, **kwargs)
    return client, adapter


# -- auth -----------------------------------------------------------------------------------


def test_jwt_token_answer_is_accepted_and_sent_as_bearer() -> None:
    client, adapter = v2_client(
        {
            ("POST", "/auth/token"): recorded("auth_token_jwt_token.json"),
            ("GET", "/api/v2/importErrors"): recorded("v2_import_errors.json"),
        }
    )
    errors = client.import_errors()
    assert [e.filename for e in errors] == ["broken_dag.py"]
    token = fixture("auth_token_jwt_token.json")["body"]["jwt_token"]
    listing = [r for r in adapter.received if r.path == "/api/v2/importErrors"]
    assert listing[0].headers["Authorization"] == f"Bearer {token}"
    exchange = [r for r in adapter.received if r.method == "POST"]
    assert len(exchange) == 1
    assert json.loads(exchange[0].body or b"") == {"username": "viewer", "password": "viewer"}


def test_token_is_fetched_once_and_renewed_once_on_401() -> None:
    expired = {"n": 0}

    def dags(got: Received) -> Answer:
        # The first JWT "expires" after one use, as a real one does after its lifetime.
        if got.headers.get("Authorization") == "Bearer jwt-1" and expired["n"] >= 1:
            return Answer(401, {"detail": "Token Expired"})
        expired["n"] += 1
        return one_page

    page = fixture("v2_dags_offset2_limit2.json")["body"]
    one_page = Answer(200, {"dags": page["dags"], "total_entries": len(page["dags"])})
    tokens = iter(["jwt-1", "jwt-2"])
    client, adapter = v2_client(
        {
            ("POST", "/auth/token"): lambda _: Answer(201, {"access_token": next(tokens)}),
            ("GET", "/api/v2/dags"): dags,
        }
    )
    assert [d.dag_id for d in client.dags()] == ["shop_ingest"]
    assert [d.dag_id for d in client.dags()] == ["shop_ingest"]
    assert [r.method for r in adapter.received].count("POST") == 2
    sent = [r.headers["Authorization"] for r in adapter.received if r.path == "/api/v2/dags"]
    assert sent == ["Bearer jwt-1", "Bearer jwt-1", "Bearer jwt-2"]


def test_second_401_is_an_auth_error_without_secrets() -> None:
    client, _ = v2_client(
        {("GET", "/api/v2/dags"): Answer(401, {"detail": "Token Expired"})},
    )
    with pytest.raises(SourceAuthError) as caught:
        client.dags()
    assert "401" in str(caught.value)
    assert "Token Expired" in str(caught.value)
    assert "viewer" not in str(caught.value).replace("/", " ").split("dags")[0]
    assert "jwt-from-server" not in str(caught.value)


def test_v1_uses_basic_auth_and_auto_detects_v1() -> None:
    adapter = ServedAdapter(
        {
            ("GET", "/api/v1/version"): Answer(200, {"version": "2.10.5", "git_version": None}),
            ("GET", "/api/v1/importErrors"): Answer(
                200,
                {
                    "import_errors": [
                        {
                            "import_error_id": 3,
                            "timestamp": "2024-05-02T00:00:01.123456789+02:00",
                            "filename": "/opt/airflow/dags/broken.py",
                            "stack_trace": "ModuleNotFoundError: No module named 'x'",
                        }
                    ],
                    "total_entries": 1,
                },
            ),
        }
    )
    client = AirflowClient(BASE, username="pipebot", password="s3cret", adapter=adapter)
    errors = client.import_errors()
    assert client.api_version == "v1"
    assert client.version() == "2.10.5"
    assert errors[0].timestamp == datetime(2024, 5, 1, 22, 0, 1, 123456, tzinfo=UTC)
    listing = next(r for r in adapter.received if r.path == "/api/v1/importErrors")
    expected = "Basic " + base64.b64encode(b"pipebot:s3cret").decode()
    assert listing.headers["Authorization"] == expected
    assert [r.path for r in adapter.received][:2] == ["/api/v2/version", "/api/v1/version"]
    assert not any(r.method == "POST" for r in adapter.received)


def test_no_api_at_base_url_is_a_readable_not_found() -> None:
    client = AirflowClient(BASE, adapter=ServedAdapter({}))
    with pytest.raises(NotFound, match="no Airflow REST API"):
        client.health()


# -- errors and paging ----------------------------------------------------------------------


def test_422_validation_detail_is_surfaced() -> None:
    client, _ = v2_client({("GET", "/api/v2/dags"): recorded("v2_error_422_limit.json")})
    with pytest.raises(UpstreamError) as caught:
        client.dags()
    assert caught.value.status == 422
    assert "Input should be greater than or equal to 0" in caught.value.reason
    assert "GET /api/v2/dags?" in caught.value.reason


def test_404_dag_suggests_close_ids() -> None:
    def dags(got: Received) -> Answer:
        offset = dict(got.query)["offset"]
        return recorded(f"v2_dags_offset{offset}_limit2.json")

    client, _ = v2_client(
        {
            ("GET", "/api/v2/dags/orders_dialy"): recorded("v2_error_404_dag.json"),
            ("GET", "/api/v2/dags"): dags,
        }
    )
    with pytest.raises(NotFound) as caught:
        client.dag("orders_dialy")
    assert caught.value.suggestions[0] == "orders_daily"
    # Said for people: the name, not the HTTP call (that is in the invocation).
    assert caught.value.reason == "Airflow has no DAG `orders_dialy`"


def test_pagination_follows_total_entries() -> None:
    def dags(got: Received) -> Answer:
        query = dict(got.query)
        # The server caps pages at 2 whatever limit we ask, as maximum_page_limit does.
        return recorded(f"v2_dags_offset{query['offset']}_limit2.json")

    client, adapter = v2_client({("GET", "/api/v2/dags"): dags})
    dags_found = client.dags()
    assert [d.dag_id for d in dags_found] == ["orders_daily", "payments_sync", "shop_ingest"]
    pages = [dict(r.query) for r in adapter.received if r.path == "/api/v2/dags"]
    assert [p["offset"] for p in pages] == ["0", "2"]
    assert dags_found[0].owners == ("dana",)
    assert dags_found[0].tags == ("dbt", "orders", "shop")


def test_runs_query_newest_first_with_repeated_states_and_queued_safe_since() -> None:
    client, adapter = v2_client(
        {("GET", "/api/v2/dags/~/dagRuns"): Answer(200, {"dag_runs": [], "total_entries": 0})}
    )
    since = datetime(2026, 11, 24, 12, tzinfo=UTC)
    client.runs(states=("failed", "running"), since=since, limit=10)
    client.runs(states=("queued",), since=since)
    first, second = [r.query for r in adapter.received if r.path.endswith("dagRuns")]
    assert ("order_by", "-id") in first  # newest created; then ordered by when they ran
    assert [v for k, v in first if k == "state"] == ["failed", "running"]
    assert ("start_date_gte", since.isoformat()) in first
    # queued runs have no start date: they are asked by run_after
    assert ("run_after_gte", since.isoformat()) in second
    assert not any(k == "start_date_gte" for k, _ in second)


def test_unknown_states_are_kept_verbatim() -> None:
    ti = task_instance({"task_id": "t", "state": "brand_new_state", "try_number": "2"})
    assert ti.state == "brand_new_state"
    assert ti.try_number == 2
    assert task_instance({"task_id": "t", "state": None}).state is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T20:00:10.413179Z", datetime(2026, 11, 25, 20, 0, 10, 413179, tzinfo=UTC)),
        ("2026-11-25T20:00:10.413179123Z", datetime(2026, 11, 25, 20, 0, 10, 413179, tzinfo=UTC)),
        (
            "2026-11-25T22:00:10+02:00",
            datetime(2026, 11, 25, 20, 0, 10, tzinfo=UTC),
        ),
        ("2026-11-25 20:00:10", datetime(2026, 11, 25, 20, 0, 10)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_dates_are_parsed_leniently(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


# -- logs -----------------------------------------------------------------------------------


def log_client(name: str, api: str = "v2") -> tuple[AirflowClient, ServedAdapter]:
    data = fixture(name)
    path = data["request"].split(" ", 1)[1]
    routes = {("GET", unquote(path)): Answer(data["status"], data["body"])}
    if api == "v1":
        adapter = ServedAdapter(routes)
        return AirflowClient(
            BASE, username="u", password="p", api_version="v1", adapter=adapter
        ), adapter
    return v2_client(routes)


def test_structured_events_become_readable_lines_and_errors() -> None:
    client, adapter = log_client("v2_log_orders_daily_transform_try1.json")
    run_id = "manual__2026-11-25T19:59:59.521419+00:00"
    log = client.task_log("orders_daily", run_id, "transform", 1)
    assert log.errors[0].exc_type == "KeyError"
    assert "column 'amount' missing from raw.orders" in log.errors[0].message
    assert log.errors[0].frames[-1].endswith("orders_daily.py:41 in transform")
    assert "20:00:10 ERROR Task failed with exception" in log.lines
    assert "20:00:10 INFO building stg_orders from raw.orders" in log.lines
    assert not any(line.startswith("::group::") for line in log.lines)
    assert log.source.endswith("task_id=transform/attempt=1.log")
    assert log.omitted_chars == 0
    request = next(r for r in adapter.received if "/logs/" in r.path)
    assert request.headers["Accept"] == "application/json"


def test_log_tail_keeps_the_end_within_max_chars() -> None:
    client, _ = log_client("v2_log_payments_sync_try1.json")
    run_id = "manual__2026-11-25T19:59:59.563361+00:00"
    full = client.task_log("payments_sync", run_id, "sync_payments", 1)
    short = client.task_log("payments_sync", run_id, "sync_payments", 1, max_chars=200)
    assert sum(len(line) + 1 for line in short.lines) <= 200
    assert short.lines[-1] == full.lines[-1]
    # Dropped events are counted by their estimated rendered size (they are never rendered).
    exact = sum(len(x) + 1 for x in full.lines) - sum(len(x) + 1 for x in short.lines)
    assert 0.8 * exact <= short.omitted_chars <= 1.2 * exact
    assert full.omitted_chars == 0
    # errors are found even when their lines fell out of the tail
    assert short.errors[0].exc_type == "ConnectionError"
    assert "refused the connection (attempt 1)" in short.errors[0].message


def test_airflow2_repr_string_log() -> None:
    client, adapter = log_client("v1_log_string_repr.json", api="v1")
    log = client.task_log("orders_daily", RUN, "transform", 1)
    assert log.errors[0].exc_type == "KeyError"
    assert "column 'amount' missing" in log.errors[0].message
    assert log.errors[0].frames[-1] == "/opt/airflow/dags/orders_daily.py:41 in transform"
    assert log.errors[0].frames[0] == "airflow/models/taskinstance.py:433 in _execute_task"
    assert log.lines[0] == "*** Found local files:"
    assert log.lines[-1].endswith("Marking task as FAILED. dag_id=orders_daily, task_id=transform")
    assert log.source == "host 05958247049c"
    # the signed token's payload says end_of_log: no second request
    assert len([r for r in adapter.received if "/logs/" in r.path]) == 1


def test_list_of_strings_log_and_continuation_followed_only_while_new() -> None:
    pages = iter(
        [
            {"content": ["first line", "second line"], "continuation_token": "tok-1"},
            {"content": ["Traceback (most recent call last):", '  File "d.py", line 3, in f',
                         "ValueError: bad row"], "continuation_token": "tok-2"},
            {"content": [], "continuation_token": "tok-3"},
            {"content": ["never read"], "continuation_token": None},
        ]
    )  # fmt: skip
    path = f"/api/v2/dags/d/dagRuns/{RUN}/taskInstances/t/logs/2"
    client, adapter = v2_client({("GET", path): lambda _: Answer(200, next(pages))})
    log = client.task_log("d", RUN, "t", 2)
    assert log.lines[:2] == ("first line", "second line")
    assert log.errors[0].exc_type == "ValueError"
    assert log.errors[0].message == "bad row"
    assert log.errors[0].frames == ("d.py:3 in f",)
    tokens = [dict(r.query).get("token") for r in adapter.received if r.path == path]
    assert tokens == [None, "tok-1", "tok-2"]  # stopped at the page that brought nothing


def _huge_v2_log(megabytes: int) -> Iterator[bytes]:
    line = {"timestamp": "2026-11-25T20:00:10.413179Z", "level": "info", "event": "x" * 4000}
    chunk = json.dumps(line).encode()
    yield b'{"content": ['
    for i in range(megabytes * 1024 * 1024 // (len(chunk) + 1)):
        yield (b"," if i else b"") + chunk
    failure = {
        "timestamp": "2026-11-25T20:00:11Z",
        "level": "error",
        "event": "Task failed with exception",
        "error_detail": [{"exc_type": "MemoryError", "exc_value": "out of rows", "frames": []}],
    }
    yield b"," + json.dumps(failure).encode() + b'], "continuation_token": null}'


def _huge_v1_log(megabytes: int) -> Iterator[bytes]:
    def json_piece(text: str) -> bytes:
        return json.dumps(text)[1:-1].encode()

    # Airflow 2: one JSON string holding the repr of [(host, text)].
    yield b'{"content": "' + json_piece("[('worker-1', '")
    line = json_piece(repr("[2024-05-02, 00:00:05 UTC] {x.py:1} INFO - " + "y" * 400 + "\n")[1:-1])
    for _ in range(megabytes * 1024 * 1024 // len(line)):
        yield line
    end = (
        'Traceback (most recent call last):\n  File "/d.py", line 9, in run\n'
        "RuntimeError: the end\n"
    )
    yield json_piece(repr(end)[1:-1] + "')]") + b'", "continuation_token": null}'


@pytest.mark.parametrize(("api", "body"), [("v2", _huge_v2_log), ("v1", _huge_v1_log)])
def test_a_50_mb_log_is_streamed_not_loaded(api: str, body: object) -> None:
    path = f"/api/{api}/dags/d/dagRuns/{RUN}/taskInstances/t/logs/1"
    routes = {("GET", path): Answer(200, stream=lambda: body(50))}  # type: ignore[operator]
    if api == "v1":
        client = AirflowClient(BASE, api_version="v1", adapter=ServedAdapter(routes))
    else:
        client, _ = v2_client(routes)
    tracemalloc.start()
    try:
        log = client.task_log("d", RUN, "t", 1, max_chars=10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading a 50 MB log"
    assert log.omitted_chars > 40_000_000
    assert sum(len(line) + 1 for line in log.lines) <= 10_000
    expected = "MemoryError" if api == "v2" else "RuntimeError"
    assert log.errors[-1].exc_type == expected


@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096])
def test_json_log_stream_survives_any_chunking(size: int) -> None:
    document = {
        "content": [
            {"event": 'a — b \u00e9 \U0001f600 "quoted" \\ back', "n": 12345},
            "plain",
            1.5e10,
        ],
        "continuation_token": None,
    }
    raw = json.dumps(document).encode()
    stream = JsonLogStream(raw[i : i + size] for i in range(0, len(raw), size))
    items = list(stream.items())
    assert [v for k, v in items if k == "item"] == document["content"]
    assert ("continuation_token", None) in items

    text = {"content": 'x\\n \u00e9\U0001f600 "q" \\\\ end', "continuation_token": "t"}
    raw = json.dumps(text).encode()
    stream = JsonLogStream(raw[i : i + size] for i in range(0, len(raw), size))
    pieces = list(stream.items())
    assert "".join(v for k, v in pieces if k == "text") == text["content"]


def test_broken_log_document_is_an_upstream_error() -> None:
    path = f"/api/v2/dags/d/dagRuns/{RUN}/taskInstances/t/logs/1"
    client, _ = v2_client({("GET", path): Answer(200, b'{"content": [{"event": "x"}, oops')})
    with pytest.raises(UpstreamError, match="log we cannot read"):
        client.task_log("d", RUN, "t", 1)


# -- read-only ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v2/dags/orders_daily", {"is_paused": True}),
        ("PATCH", "/api/v2/dags/orders_daily", {"is_paused": True}),
        ("DELETE", "/api/v2/dags/orders_daily", None),
        ("POST", "/api/v2/dags/orders_daily/dagRuns", {"logical_date": None}),
        ("POST", "/api/v2/dags/~/dagRuns/list", {"dag_ids": ["orders_daily"]}),
        ("POST", "/auth/token", {"username": "a", "password": "b", "extra": 1}),
        ("POST", "/auth/token", {"username": "a"}),
        ("POST", "/auth/token", ["username", "password"]),
        ("POST", "/auth/token/cli", {"username": "a", "password": "b"}),
        ("PUT", "/auth/token", {"username": "a", "password": "b"}),
    ],
)
def test_every_write_is_refused_before_it_leaves(method: str, path: str, body: object) -> None:
    client, adapter = v2_client({})
    assert isinstance(client.session, ReadOnlySession)
    with pytest.raises(ReadOnlyRefused, match="nothing was sent"):
        client.session.call(method, path, json_body=body)
    assert adapter.received == []


def test_exact_token_exchange_is_the_one_allowed_post() -> None:
    client, adapter = v2_client({})
    client.session.call("POST", "/auth/token", json_body={"username": "a", "password": "b"})
    assert [(r.method, r.path) for r in adapter.received] == [("POST", "/auth/token")]


def test_client_has_no_write_methods() -> None:
    public = {name for name in dir(AirflowClient) if not name.startswith("_")}
    writes = ("trigger", "clear", "pause", "delete", "patch", "post", "put", "set", "update")
    assert not [n for n in public if n.startswith(writes)]


def test_source_errors_only() -> None:
    client = AirflowClient("http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(SourceError):
        client.runs(since=datetime.now(UTC) - timedelta(hours=1))


def test_from_settings_and_no_credentials_in_the_url() -> None:
    from pydantic import SecretStr

    from bot.settings import AirflowSettings

    adapter = ServedAdapter(
        {
            ("GET", "/airflow/api/v2/version"): V2_VERSION,
            ("POST", "/airflow/auth/token"): Answer(201, {"access_token": "jwt-s"}),
            ("GET", "/airflow/api/v2/importErrors"): recorded("v2_import_errors.json"),
        }
    )
    settings = AirflowSettings(
        base_url="https://user:pw@airflow.example.com/airflow/",
        username="viewer",
        password=SecretStr("from-settings"),
        api_version="auto",
    )
    client = AirflowClient.from_settings(settings, adapter=adapter)
    assert client.base_url == "https://airflow.example.com/airflow"
    assert client.import_errors()[0].filename == "broken_dag.py"
    exchange = next(r for r in adapter.received if r.method == "POST")
    assert json.loads(exchange.body or b"")["password"] == "from-settings"
    assert "pw" not in repr(client)


def test_traceback_printed_line_by_line_to_stderr_is_found() -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "/opt/dags/sync.py", line 12, in run',
        "    client.fetch()",
        "requests.exceptions.ConnectTimeout: payments.internal timed out",
    ]
    events = [
        {"timestamp": "2026-11-25T20:00:10Z", "level": "error", "event": x, "chan": "stderr"}
        for x in lines
    ]
    path = f"/api/v2/dags/d/dagRuns/{RUN}/taskInstances/t/logs/1"
    client, _ = v2_client({("GET", path): Answer(200, {"content": events})})
    log = client.task_log("d", RUN, "t", 1)
    assert log.errors[0].exc_type == "requests.exceptions.ConnectTimeout"
    assert log.errors[0].message == "payments.internal timed out"
    assert log.errors[0].frames == ("/opt/dags/sync.py:12 in run",)
    assert log.lines[0] == "20:00:10 ERROR Traceback (most recent call last):"
