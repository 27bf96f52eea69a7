"""The dbt Cloud client cannot write: no write method exists, and every write is refused
before it leaves the process (the fake dbt Cloud sees nothing)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import ReadOnlyViolation
from integrations.dbt.cloud import CloudProject, DbtCloudClient
from tests.fakes.dbt_cloud import FakeDbtCloud
from tests.integrations.dbt.conftest import client_for

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# The spec's write endpoints, and made-up ones.
WRITE_PATHS = (
    "/api/v2/accounts/1/jobs/1001/run/",
    "/api/v2/accounts/1/jobs/1001/rerun/",
    "/api/v2/accounts/1/runs/70129/cancel/",
    "/api/v2/accounts/1/runs/70129/retry/",
    "/api/v2/accounts/1/jobs/",
    "/api/v2/accounts/1/jobs/1001/",
    "/graphql",
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDbtCloud]:
    with FakeDbtCloud() as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeDbtCloud) -> DbtCloudClient:
    return client_for(fake)


def test_no_write_methods_exist() -> None:
    for cls in (DbtCloudClient, CloudProject):
        names = [n for n, _ in inspect.getmembers(cls, callable) if not n.startswith("_")]
        writes = [
            n
            for n in names
            if n.split("_")[0]
            in {
                "trigger",
                "rerun",
                "retry",
                "cancel",
                "create",
                "update",
                "delete",
                "post",
                "put",
                "patch",
                "run_job",
                "set",
            }
        ]
        assert writes == [], f"{cls.__name__} exposes {writes}"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(WRITE_METHODS),
    path=st.one_of(
        st.sampled_from(WRITE_PATHS),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_-", max_size=40).map(
            lambda tail: "/api/v2/" + tail
        ),
    ),
    body=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.integers(), max_size=3)),
)
def test_writes_are_refused_before_sending(
    fake: FakeDbtCloud, client: DbtCloudClient, method: str, path: str, body: object
) -> None:
    before = len(fake.requests)
    with pytest.raises(ReadOnlyViolation, match="pipebot only reads"):
        client.session.call(method, path, json_body=body)
    with pytest.raises(ReadOnlyViolation):
        client.session.request(method, client.session.url(path), json=body)
    assert len(fake.requests) == before
    assert fake.writes == []


_names = st.from_regex(r"[a-z][a-zA-Z0-9]{0,10}", fullmatch=True)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operation=st.tuples(st.sampled_from(["mutation", "subscription"]), _names, _names),
    with_query=st.booleans(),
)
def test_graphql_mutations_never_leave(
    fake: FakeDbtCloud, client: DbtCloudClient, operation: tuple[str, str, str], with_query: bool
) -> None:
    kind, name, field = operation
    document = f"{kind} {name} {{ {field}(id: 1) {{ id }} }}"
    if with_query:
        # A harmless query next to it does not make the document read-only.
        document = "query ok { __typename }\n" + document
    before = len(fake.requests)
    with pytest.raises(ReadOnlyViolation):
        client.discovery_query(document)
    assert len(fake.requests) == before
    assert fake.writes == []


def test_a_pure_query_is_the_one_post_allowed(fake: FakeDbtCloud, client: DbtCloudClient) -> None:
    assert client.discovery_query("query Q { __typename }") == {"__typename": "Query"}
    assert fake.writes == []
    # The exception is bound to the Discovery path: the same body elsewhere is refused.
    with pytest.raises(ReadOnlyViolation):
        client.session.call("POST", "/graphql", json_body={"query": "{ __typename }"})
