"""`BigQueryCatalog` through the real google-cloud-bigquery client against the local REST fake
(tests/fakes/bigquery_api.py): the same facts as PostgreSQL for the same tables, paging,
errors, the toolset, and the URL forms."""

from __future__ import annotations

import gzip
import io
import json
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from bot import metrics
from bot.errors import ConfigError, NotFound, SourceAuthError
from bot.settings import WarehouseSettings
from bot.tools import ToolStatus
from integrations.errors import UpstreamAuthError, UpstreamNotFound
from integrations.warehouse import Catalog, open_catalog, warehouse_toolset
from integrations.warehouse.bigquery import BigQueryCatalog, _read_response, data_type
from tests.fakes.bigquery_api import FakeBigQuery, field
from tests.integrations.warehouse import rest_shop
from tests.integrations.warehouse.support import search_path_schema
from tests.integrations.warehouse.test_privileges import doctor

PROJECT = "pipebot-test"


@pytest.fixture
def fake() -> Iterator[FakeBigQuery]:
    with FakeBigQuery(PROJECT) as server:
        rest_shop.build_bigquery(server, "shop")
        server.add_table("staging", "stg_orders", [field("id", "INTEGER")], num_rows=0)
        yield server


def open_bq(fake: FakeBigQuery, dataset: str = "", **kwargs: Any) -> BigQueryCatalog:
    path = f"/{dataset}" if dataset else ""
    return BigQueryCatalog.from_url(f"bigquery://{PROJECT}{path}?api_endpoint={fake.url}", **kwargs)


@pytest.fixture
def catalog(fake: FakeBigQuery) -> Iterator[BigQueryCatalog]:
    with open_bq(fake, "shop") as opened:
        yield opened


def test_same_facts_as_postgres_for_the_same_tables(
    catalog: BigQueryCatalog, pg_url: str, pg_engine: Engine
) -> None:
    schema = search_path_schema(pg_url)
    rest_shop.build_postgres(pg_engine, schema)
    with Catalog(pg_url, [schema]) as postgres:
        expected = {t.name: t for t in postgres.tables(schema)}
    actual = {t.name: t for t in catalog.tables("shop")}
    assert sorted(actual) == sorted(expected) == ["big_orders", "customers", "orders"]
    for name, pg in expected.items():
        bq = actual[name]
        assert (bq.database, bq.schema) == (PROJECT, "shop")
        assert bq.kind == pg.kind, name
        assert bq.row_count == pg.row_count, name  # PostgreSQL's estimate is exact after ANALYZE
        assert [c.name for c in bq.columns] == [c.name for c in pg.columns], name
        assert [c.nullable for c in bq.columns] == [c.nullable for c in pg.columns], name
        assert [c.position for c in bq.columns] == [c.position for c in pg.columns], name
        assert bq.comment == pg.comment, name
        assert [c.comment for c in bq.columns] == [c.comment for c in pg.columns], name
        for pg_column, bq_column in zip(pg.columns, bq.columns, strict=True):
            assert rest_shop.same_type(pg_column.data_type, bq_column.data_type), (
                name,
                pg_column,
                bq_column,
            )
        # What each knows differently: BigQuery records the last change and logical bytes.
        assert bq.last_altered == datetime(2026, 1, 1, tzinfo=UTC)
    assert actual["big_orders"].row_count is None and actual["big_orders"].size_bytes is None
    assert actual["orders"].size_bytes == 250 * 64


def test_schemas_are_datasets_scoped_by_the_url(
    fake: FakeBigQuery, catalog: BigQueryCatalog
) -> None:
    assert catalog.schemas() == ["shop"]
    with open_bq(fake) as everything:
        assert everything.schemas() == ["shop", "staging"]
        assert [t.qualified_name for t in everything.tables()] == [
            "shop.big_orders",
            "shop.customers",
            "shop.orders",
            "staging.stg_orders",
        ]


def test_types_are_standard_sql() -> None:
    assert data_type(field("a", "INTEGER")) == "INT64"
    assert data_type(field("a", "FLOAT")) == "FLOAT64"
    assert data_type(field("a", "BOOLEAN")) == "BOOL"
    assert data_type(field("a", "STRING", "REPEATED")) == "ARRAY<STRING>"
    assert data_type(field("a", "BIGNUMERIC", precision=40)) == "BIGNUMERIC(40)"
    nested = field("addr", "RECORD", fields=[field("city", "STRING"), field("zip", "INTEGER")])
    assert data_type(nested) == "STRUCT<city STRING, zip INT64>"


def test_paging_reads_every_page_with_bounded_tables_get(fake: FakeBigQuery) -> None:
    fake.max_page = 7  # the client asks for 1,000; a server may give fewer
    for i in range(30):
        fake.add_table(
            "wide", f"t{i:02d}", [field(f"c{j}", "STRING") for j in range(20)], num_rows=i
        )
    with open_bq(fake, "wide") as catalog:
        before = fake.served
        tables = catalog.tables()
        assert [t.name for t in tables] == [f"t{i:02d}" for i in range(30)]
        assert [t.row_count for t in tables] == list(range(30))
        assert all(len(t.columns) == 20 for t in tables)
        calls = fake.requests[-(fake.served - before) :]
    lists = [p for _m, p in calls if p.endswith("/datasets/wide/tables")]
    gets = [p for _m, p in calls if "/tables/" in p]
    assert len(lists) == 5  # ceil(30 / 7)
    assert len(gets) == 30


def test_row_cap_bounds_the_tables_described(fake: FakeBigQuery) -> None:
    for i in range(12):
        fake.add_table("wide", f"t{i:02d}", [field("id", "INTEGER")])
    with open_bq(fake, "wide", row_cap=5) as catalog:
        before = fake.served
        assert [t.name for t in catalog.tables()] == [f"t{i:02d}" for i in range(5)]
        gets = [p for _m, p in fake.requests[before:] if "/tables/" in p]
    assert len(gets) == 6  # the cap plus one, to know it was cut


def test_unknown_table_suggests_close_names(catalog: BigQueryCatalog) -> None:
    with pytest.raises(UpstreamNotFound) as caught:
        catalog.table("shop", "ordrs")
    assert caught.value.reason.startswith("no table or view shop.ordrs in BigQuery project")
    assert "shop.orders" in caught.value.suggestions


def test_unknown_dataset_is_a_schema_not_found(fake: FakeBigQuery) -> None:
    with open_bq(fake) as catalog, pytest.raises(NotFound) as caught:
        catalog.table("shopp", "orders")
    assert caught.value.reason.startswith("no schema shopp in BigQuery project")
    assert list(caught.value.suggestions) == ["shop"]


def test_unconfigured_dataset_is_refused_without_a_call(
    fake: FakeBigQuery, catalog: BigQueryCatalog
) -> None:
    before = fake.served
    with pytest.raises(NotFound, match="not one of the configured schemas"):
        catalog.table("staging", "stg_orders")
    assert fake.served == before


def test_permission_denied_names_the_role_to_grant(fake: FakeBigQuery) -> None:
    fake.deny("shop")
    with open_bq(fake) as catalog, pytest.raises(UpstreamAuthError) as caught:
        catalog.tables("shop")
    assert caught.value.status == 403
    assert "Access Denied: Dataset pipebot-test:shop" in caught.value.reason
    assert "roles/bigquery.metadataViewer" in caught.value.reason
    check = open_bq(fake).check()
    assert not check.ok and "metadataViewer" in check.detail


def test_rejected_credentials_fail_the_check(fake: FakeBigQuery) -> None:
    fake.refuse_all()
    with open_bq(fake, "shop") as catalog:
        # google-auth answers a 401 by refreshing the token; anonymous ones cannot refresh.
        with pytest.raises(SourceAuthError, match="refused the credentials"):
            catalog.schemas()
        check = catalog.check()
    assert not check.ok
    assert check.target == f"BigQuery project {PROJECT}"


def test_check_reads_the_catalog(catalog: BigQueryCatalog) -> None:
    check = catalog.check()
    assert check.ok, check.detail
    assert check.detail == (
        "read the catalog of 1 dataset(s) (shop): 3 tables and views; roles not checked: the "
        "credentials are not a service account's (user credentials name no member to look for)"
    )
    assert check.version.startswith("BigQuery API v2 (google-cloud-bigquery 3.")


def test_check_names_a_missing_configured_dataset(fake: FakeBigQuery) -> None:
    with open_bq(fake, "shp") as catalog:
        check = catalog.check()
    assert not check.ok
    assert check.detail == "dataset shp not found or not visible (did you mean shop?)"


def test_unreachable_endpoint_is_unavailable_within_the_timeout() -> None:
    catalog = BigQueryCatalog.from_url(
        "bigquery://p/d?api_endpoint=http://127.0.0.1:9", statement_timeout=0.5
    )
    check = catalog.check()
    assert not check.ok
    assert (
        "BigQuery" in check.detail and "STATEMENT_TIMEOUT" in check.detail
    ) or "reach" in check.detail


def test_calls_are_counted_in_the_connector_metrics(catalog: BigQueryCatalog) -> None:
    gets = metrics.CONNECTOR_REQUESTS.labels("warehouse", "tables.get")
    before = gets._value.get()
    catalog.tables("shop")
    assert gets._value.get() == before + 3


def test_toolset_over_bigquery(catalog: BigQueryCatalog) -> None:
    tools = {t.name: t for t in warehouse_toolset(catalog).tools()}
    assert tools["list_schemas"].call({}).data == {"schemas": ["shop"]}
    listing = tools["list_tables"].call({"schema": "shop", "pattern": "*orders"})
    assert listing.status is ToolStatus.SUCCESS
    assert listing.data["tables"][1] == {
        "name": "orders",
        "kind": "table",
        "rows": 250,
        "size_bytes": 16000,
        "last_altered": "2026-01-01T00:00:00+00:00",
        "columns": 4,
    }
    assert "lastModifiedTime" in listing.data["last_altered_means"]
    described = tools["describe_table"].call({"schema": "shop", "table": "customers"})
    assert described.data["comment"] == "one row per customer"
    assert described.data["columns"][1]["comment"] == "PII"
    assert described.data["columns"][2] == {
        "name": "tier",
        "type": "STRING(16)",
        "nullable": True,
        "position": 3,
    }
    missing = tools["describe_table"].call({"schema": "shop", "table": "ordrs"})
    assert missing.status is ToolStatus.NO_DATA
    assert missing.data["suggestions"][0] == "shop.orders"
    assert "on bigquery catalog at BigQuery project" in missing.invocation


def test_open_catalog_routes_by_scheme(fake: FakeBigQuery, pg_url: str) -> None:
    url = f"bigquery://{PROJECT}/shop?api_endpoint={fake.url}&location=EU"
    opened = open_catalog(WarehouseSettings(url=SecretStr(url), schemas=["staging"]))
    assert isinstance(opened, BigQueryCatalog)
    assert opened.configured == ("shop", "staging")
    assert opened.location == "EU" and opened.where == f"BigQuery project {PROJECT} (EU)"
    assert isinstance(open_catalog(WarehouseSettings(url=SecretStr(pg_url))), Catalog)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bigquery:///d", "names no project"),
        ("bigquery://p/a/b", "at most one dataset"),
        ("bigquery://u:secret@p/d", "carries no user or password"),
        ("bigquery://p/d?locaton=US", "unknown option 'locaton'"),
        ("bigquery://p/d?credentials_path=/nonexistent/key.json", "does not exist"),
        ("bigquery://p/d?credentials_base64=bm90IGpzb24=", "not a service-account key"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        BigQueryCatalog.from_url(url)
    assert "secret" not in str(caught.value)


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if google-cloud-bigquery were not installed: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)
    with pytest.raises(ConfigError) as caught:
        open_catalog(WarehouseSettings(url=SecretStr("bigquery://p/d")))
    assert str(caught.value) == (
        "BigQuery support is not installed: pip install 'pipebot[bigquery]'"
    )


# --- tables.get over pipebot's own HTTP/1.1 reader ----------------------------------------


def test_tables_get_asks_only_for_the_fields_the_catalog_maps(
    fake: FakeBigQuery, catalog: BigQueryCatalog
) -> None:
    view = catalog.table("shop", "big_orders")
    assert view.kind == "view" and [c.name for c in view.columns] == ["id", "amount"]
    # The fake answered a partial response (`fields=`): the view's SQL stayed on the server.
    (selection,) = {fields for _table, fields in fake._datasets["shop"].partial}
    assert set(selection.split(",")) == {
        "tableReference",
        "type",
        "schema",
        "numRows",
        "numBytes",
        "lastModifiedTime",
        "description",
    }


@pytest.mark.parametrize(
    ("raw", "keep"),
    [
        (b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a": "b"}', True),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4;ext=1\r\n{"a"\r\n7\r\n: "b"}\r\n0\r\nX-Trailer: 1\r\n\r\n',
            True,
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n"
            b"Content-Encoding: gzip\r\n\r\n" + gzip.compress(b'{"a": "b"}'),
            False,
        ),
        (b'HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n{"a": "b"}', False),
    ],
    ids=["content-length", "chunked", "gzip-until-close", "http-1.0"],
)
def test_the_response_reader_takes_every_framing(raw: bytes, keep: bool) -> None:
    status, reason, body, kept = _read_response(io.BytesIO(raw))
    assert (status, reason, json.loads(body), kept) == (200, "OK", {"a": "b"}, keep)


def test_a_cut_answer_or_a_closed_connection_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError):
        _read_response(io.BytesIO(b""))  # a kept-alive connection the server closed
    with pytest.raises(ConnectionError):
        _read_response(io.BytesIO(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}"))


def test_a_connection_the_server_closed_is_reopened_by_the_retry(
    fake: FakeBigQuery, catalog: BigQueryCatalog
) -> None:
    catalog.table("shop", "orders")  # a kept-alive connection now
    getter = catalog._getter
    assert getter is not None
    for connection in list(getter._opened):
        connection.socket.shutdown(socket.SHUT_RDWR)  # as a server's idle timeout would
    assert catalog.table("shop", "customers").comment == "one row per customer"


# --- doctor: the service account's roles ---------------------------------------------------

SERVICE_ACCOUNT = f"pipebot@{PROJECT}.iam.gserviceaccount.com"
MEMBER = f"serviceAccount:{SERVICE_ACCOUNT}"


@pytest.fixture
def key_file(fake: FakeBigQuery, tmp_path: Path) -> Path:
    """A real service-account key (a fresh RSA key) whose token_uri is the fake's: google-auth
    signs in with it as it would at oauth2.googleapis.com, and the catalog learns who it is."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": SERVICE_ACCOUNT,
                "client_id": "1234567890",
                "token_uri": f"{fake.url}/token",
            }
        )
    )
    return path


def keyed_url(fake: FakeBigQuery, key_file: Path) -> str:
    return f"bigquery://{PROJECT}/shop?api_endpoint={fake.url}&credentials_path={key_file}"


def documented_roles(fake: FakeBigQuery) -> None:
    """What deploy/warehouse-bigquery-role.sh grants: metadataViewer on the dataset, jobUser
    on the project (which these roles may not read: the fake's policy stays 403)."""
    fake.grant_dataset("shop", "roles/bigquery.metadataViewer", iamMember=MEMBER)


def test_the_documented_roles_pass_the_check(fake: FakeBigQuery, key_file: Path) -> None:
    documented_roles(fake)
    with BigQueryCatalog.from_url(keyed_url(fake, key_file)) as catalog:
        check = catalog.check()
    assert check.ok, check.detail
    assert check.detail == (
        "read the catalog of 1 dataset(s) (shop): 3 tables and views; project-level roles not "
        "checked: the login may not read the project's IAM policy (as with the documented roles)"
    )
    assert fake.tokens and set(fake.tokens) == {SERVICE_ACCOUNT}  # the key signed in
    assert ("GET", f"/bigquery/v2/projects/{PROJECT}/datasets/shop") in fake.requests


def test_roles_beyond_the_documented_ones_fail_the_check(
    fake: FakeBigQuery, key_file: Path
) -> None:
    documented_roles(fake)
    fake.grant_dataset("shop", "WRITER", userByEmail=SERVICE_ACCOUNT)
    fake.project_policy = [
        {"role": "roles/bigquery.jobUser", "members": [MEMBER]},
        {"role": "roles/bigquery.dataEditor", "members": [MEMBER, "group:data@acme.io"]},
        {"role": "roles/owner", "members": ["user:admin@acme.io"]},
    ]
    with BigQueryCatalog.from_url(keyed_url(fake, key_file)) as catalog:
        check = catalog.check()
    assert not check.ok
    assert check.detail == (
        "the login has grants beyond the documented read-only role — "
        f"{MEMBER} has roles/bigquery.dataEditor on the project, beyond the documented roles: "
        f"gcloud projects remove-iam-policy-binding PROJECT --member={MEMBER} "
        "--role=roles/bigquery.dataEditor; "
        f"{MEMBER} has roles/bigquery.dataEditor on dataset shop, beyond the documented roles: "
        "remove the entry from the dataset's access list (bq update --source=… shop, or the "
        "console's Sharing > Permissions)"
    )


def test_pipebot_doctor_exits_1_naming_what_to_revoke_and_0_for_the_documented_roles(
    fake: FakeBigQuery, key_file: Path, tmp_path: Path
) -> None:
    documented_roles(fake)
    url = keyed_url(fake, key_file)
    passed = doctor(tmp_path, url, "shop")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    line = next(line for line in passed.stdout.splitlines() if "warehouse" in line)
    assert "✓" in line and "3 tables and views" in line
    fake.grant_dataset("shop", "roles/bigquery.dataOwner", iamMember=MEMBER)
    failed = doctor(tmp_path, url, "shop")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    line = next(line for line in failed.stdout.splitlines() if "warehouse" in line)
    assert "✗" in line and "grants beyond the documented read-only role" in line
    assert "roles/bigquery.dataOwner on dataset shop" in line
    assert "PRIVATE KEY" not in failed.stdout + failed.stderr


def test_credentials_go_over_plain_http_only_to_this_machine(key_file: Path) -> None:
    with pytest.raises(ConfigError, match="except to this machine"):
        BigQueryCatalog.from_url(
            f"bigquery://p/d?api_endpoint=http://bq.example.com&credentials_path={key_file}"
        )
