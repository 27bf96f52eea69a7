"""`pipebot doctor` fails a warehouse login that can write, and says what to revoke.

PostgreSQL is the machine's real server: the superuser ``postgres``, a role made by
deploy/warehouse-readonly-role.sql, and that role with each write ability added — whose
suggested REVOKE is then run to show it is the right one. Snowflake, BigQuery and Databricks have
no local server that reports grants, so their checks run over answers composed from the
documented shapes (labelled with source and date below).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from integrations.errors import ReadOnlyRefused
from integrations.warehouse import privileges
from integrations.warehouse.catalog import Catalog
from integrations.warehouse.guard import SqlGuard
from tests.integrations.warehouse.support import PgWarehouse, unique_name
from tests.integrations.warehouse.test_catalog_postgres import role_statements


def reader_url(pg_warehouse: PgWarehouse, role: str) -> str:
    url = make_url(pg_warehouse.url).set(username=role, password="change-me")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def made_role(pg_warehouse: PgWarehouse, pg_engine: Engine) -> Iterator[str]:
    """A login made by the deploy file, dropped with whatever it was granted afterwards."""
    role = unique_name("pipebot_reader")
    with pg_engine.begin() as connection:
        for statement in role_statements(role, pg_warehouse.schema):
            connection.execute(text(statement))
    yield role
    with pg_engine.begin() as connection:
        connection.execute(text(f'REVOKE CREATE ON DATABASE test FROM "{role}"'))
        connection.execute(text(f'DROP OWNED BY "{role}"'))
        connection.execute(text(f'DROP ROLE "{role}"'))


def test_a_superuser_login_fails_the_check(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url, [pg_warehouse.schema]) as catalog:
        check = catalog.check()
    assert not check.ok
    assert check.detail == (
        "the login can write — the login postgres is a superuser (it can write anything, and "
        "turn read-only transactions off): use a read-only role — "
        "deploy/warehouse-readonly-role.sql"
    )


def test_the_deploy_files_role_passes(pg_warehouse: PgWarehouse, made_role: str) -> None:
    with Catalog(reader_url(pg_warehouse, made_role), [pg_warehouse.schema]) as catalog:
        check = catalog.check()
        assert catalog._write_abilities([pg_warehouse.schema]) == []
    assert check.ok, check.detail


def test_each_write_ability_is_named_and_its_revoke_takes_it_away(
    pg_warehouse: PgWarehouse, made_role: str, pg_engine: Engine
) -> None:
    schema, role = pg_warehouse.schema, made_role
    server = unique_name("pipebot_srv")
    grants = [
        f'GRANT INSERT, DELETE ON "{schema}".orders TO "{role}"',
        f'GRANT UPDATE ON "{schema}".customers TO "{role}"',
        f'GRANT CREATE ON SCHEMA "{schema}" TO "{role}"',
        f'GRANT CREATE ON DATABASE test TO "{role}"',
        f'ALTER ROLE "{role}" CREATEDB CREATEROLE',
        f'GRANT pg_write_all_data TO "{role}"',
        # Extensions in the test's schema, so they go with it.
        f'CREATE EXTENSION IF NOT EXISTS dblink SCHEMA "{schema}"',
        f'CREATE EXTENSION IF NOT EXISTS postgres_fdw SCHEMA "{schema}"',
        f'GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO "{role}"',
        f"CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'test')",
        f'GRANT USAGE ON FOREIGN SERVER {server} TO "{role}"',
    ]
    with pg_engine.begin() as connection:
        for statement in grants:
            connection.execute(text(statement))
    try:
        url = reader_url(pg_warehouse, role)
        with Catalog(url, [schema]) as catalog:
            abilities = catalog._write_abilities([schema])
            check = catalog.check()
        shown = [a.what for a in abilities]
        assert shown[:6] == [
            f"the login {role} may create roles (CREATEROLE)",
            f"the login {role} may create databases (CREATEDB)",
            f"the login {role} can act as role pg_write_all_data, which can write",
            # pg_write_all_data reaches every table and view, not just the two granted
            f"the login {role} may INSERT, UPDATE, DELETE or TRUNCATE 6 table(s) in schema "
            f"{schema} (e.g. {schema}.big_orders)",
            f"the login {role} may CREATE objects in schema {schema}",
            f"the login {role} may CREATE schemas in database test",
        ]
        assert shown[6].startswith(f"the login {role} may execute ")
        assert f"function(s) of extension dblink (e.g. {schema}.dblink" in shown[6]
        assert shown[7:] == [
            f"the login {role} may use foreign data wrapper postgres_fdw (it can create servers "
            "that write elsewhere)",
            f"the login {role} may use foreign server {server}",
        ]
        assert not check.ok
        assert check.detail.startswith("the login can write — ")
        assert check.detail.endswith("; and 4 more")
        # Each suggested statement, run by an administrator, takes its ability away.
        with pg_engine.begin() as connection:
            for ability in abilities:
                assert ability.sql, ability
                connection.execute(text(ability.sql))
        with Catalog(url, [schema]) as catalog:
            assert catalog._write_abilities([schema]) == []
            assert catalog.check().ok
    finally:
        with pg_engine.begin() as connection:
            connection.execute(text(f"DROP SERVER IF EXISTS {server} CASCADE"))


# --- pipebot doctor, as a person runs it -----------------------------------------------------


def doctor(tmp_path: Path, url: str, schema: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COLUMNS": "400",  # one line per check: rich would wrap the detail
        "PIPEBOT_WAREHOUSE__URL": url,
        "PIPEBOT_WAREHOUSE__SCHEMAS": schema,
        "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def test_doctor_exits_1_for_a_superuser_login(tmp_path: Path, pg_warehouse: PgWarehouse) -> None:
    done = doctor(tmp_path, pg_warehouse.url, pg_warehouse.schema)
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if "warehouse" in line)
    assert "✗" in line
    assert "the login can write" in line
    assert "superuser" in line and "deploy/warehouse-readonly-role.sql" in line


def test_doctor_passes_the_deploy_files_role(
    tmp_path: Path, pg_warehouse: PgWarehouse, made_role: str
) -> None:
    done = doctor(tmp_path, reader_url(pg_warehouse, made_role), pg_warehouse.schema)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if "warehouse" in line)
    assert "✓" in line and "5 tables and views" in line
    assert "change-me" not in done.stdout + done.stderr


# --- the warehouses without a local server ---------------------------------------------------

# Source: the column list of SHOW GRANTS TO ROLE in docs.snowflake.com/en/sql-reference/sql/
# show-grants and the 2025_01 bundle note (bcr-1803), read 2026-12-03; rows composed for a role
# made as docs/warehouses.md says, plus one grant of each kind beyond it. Not from a live account.
SNOWFLAKE_GRANTS = [
    {"privilege": "USAGE", "granted_on": "WAREHOUSE", "name": "PIPEBOT_XS"},
    {"privilege": "USAGE", "granted_on": "DATABASE", "name": "ANALYTICS"},
    {"privilege": "USAGE", "granted_on": "SCHEMA", "name": "ANALYTICS.MARTS"},
    {"privilege": "REFERENCES", "granted_on": "TABLE", "name": "ANALYTICS.MARTS.ORDERS"},
    {"privilege": "REFERENCES", "granted_on": "VIEW", "name": "ANALYTICS.MARTS.BIG_ORDERS"},
    {"privilege": "USAGE", "granted_on": "DATABASE_ROLE", "name": "SNOWFLAKE.USAGE_VIEWER"},
]
SNOWFLAKE_EXTRA = [
    {"privilege": "INSERT", "granted_on": "TABLE", "name": "ANALYTICS.MARTS.ORDERS"},
    {"privilege": "SELECT", "granted_on": "TABLE", "name": "ANALYTICS.MARTS.CUSTOMERS"},
    {"privilege": "CREATE TABLE", "granted_on": "SCHEMA", "name": "ANALYTICS.MARTS"},
    {"privilege": "USAGE", "granted_on": "ROLE", "name": "TRANSFORMER"},
    {"privilege": "OWNERSHIP", "granted_on": "SCHEMA", "name": "ANALYTICS.MARTS"},
]


def test_snowflake_documented_role_passes_and_extra_grants_are_named() -> None:
    assert privileges.snowflake_abilities("PIPEBOT_METADATA", SNOWFLAKE_GRANTS) == []
    found = privileges.snowflake_abilities("PIPEBOT_METADATA", SNOWFLAKE_GRANTS + SNOWFLAKE_EXTRA)
    assert [str(a) for a in found] == [
        "role PIPEBOT_METADATA has INSERT on TABLE ANALYTICS.MARTS.ORDERS, which goes beyond "
        "metadata: REVOKE INSERT ON TABLE ANALYTICS.MARTS.ORDERS FROM ROLE PIPEBOT_METADATA",
        "role PIPEBOT_METADATA has SELECT on TABLE ANALYTICS.MARTS.CUSTOMERS, which reads data: "
        "REVOKE SELECT ON TABLE ANALYTICS.MARTS.CUSTOMERS FROM ROLE PIPEBOT_METADATA",
        "role PIPEBOT_METADATA has CREATE TABLE on SCHEMA ANALYTICS.MARTS, which goes beyond "
        "metadata: REVOKE CREATE TABLE ON SCHEMA ANALYTICS.MARTS FROM ROLE PIPEBOT_METADATA",
        "role PIPEBOT_METADATA inherits role TRANSFORMER and all of its grants: "
        "REVOKE ROLE TRANSFORMER FROM ROLE PIPEBOT_METADATA",
        "role PIPEBOT_METADATA owns SCHEMA ANALYTICS.MARTS: "
        "GRANT OWNERSHIP ON SCHEMA ANALYTICS.MARTS TO ROLE <its owner> COPY CURRENT GRANTS",
    ]


# The doctor's two Snowflake statements: fakesnow runs neither (no roles; see test_snowflake.py),
# so their text and shape are checked here, and the step from their rows to the verdict runs on
# rows composed from docs.snowflake.com/en/sql-reference/functions/current_secondary_roles
# (``{"roles": "A,B", "value": "ALL"}``) and …/sql/show-grants, read 2026-12-04.
SNOWFLAKE_SESSION = {
    "role_name": "PIPEBOT_METADATA",
    "user_name": "PIPEBOT",
    "secondary_roles": '{"roles":"PIPEBOT_METADATA","value":"ALL"}',
}


def test_snowflake_statements_are_a_guarded_select_and_a_quoted_show() -> None:
    guarded = SqlGuard("snowflake", row_cap=10).check(privileges.SNOWFLAKE_SESSION_SQL)
    tree = sqlglot.parse_one(privileges.SNOWFLAKE_SESSION_SQL, read="snowflake")
    assert [e.alias for e in tree.expressions] == ["role_name", "user_name", "secondary_roles"]
    assert not guarded.relations and guarded.sql.endswith("LIMIT 10")
    assert privileges.snowflake_grants_sql("PIPEBOT_METADATA") == (
        'SHOW GRANTS TO ROLE "PIPEBOT_METADATA"'
    )
    # CURRENT_ROLE() names a role as stored: quoted, a mixed-case or odd name stays one name.
    assert privileges.snowflake_grants_sql('Ops "X"; DROP') == (
        'SHOW GRANTS TO ROLE "Ops ""X""; DROP"'
    )
    parsed = sqlglot.parse(privileges.snowflake_grants_sql('a"; DROP TABLE t; --'), "snowflake")
    assert len(parsed) == 1


def test_snowflake_session_and_grants_rows_give_the_verdict() -> None:
    assert privileges.snowflake_login_abilities(SNOWFLAKE_SESSION, SNOWFLAKE_GRANTS) == []
    # No secondary roles at all (DEFAULT_SECONDARY_ROLES = ()), as the role file sets.
    quiet = dict(SNOWFLAKE_SESSION, secondary_roles='{"roles":"","value":""}')
    assert privileges.snowflake_login_abilities(quiet, SNOWFLAKE_GRANTS) == []
    wide = dict(
        SNOWFLAKE_SESSION,
        secondary_roles='{"roles":"PIPEBOT_METADATA,PUBLIC,SYSADMIN","value":"ALL"}',
    )
    found = privileges.snowflake_login_abilities(wide, [*SNOWFLAKE_GRANTS, SNOWFLAKE_EXTRA[0]])
    assert [str(a) for a in found] == [
        "the session of user PIPEBOT also acts with secondary role(s) SYSADMIN, beyond role "
        'PIPEBOT_METADATA: ALTER USER "PIPEBOT" SET DEFAULT_SECONDARY_ROLES = ()',
        "role PIPEBOT_METADATA has INSERT on TABLE ANALYTICS.MARTS.ORDERS, which goes beyond "
        "metadata: REVOKE INSERT ON TABLE ANALYTICS.MARTS.ORDERS FROM ROLE PIPEBOT_METADATA",
    ]
    assert privileges.summary(found, privileges.BEYOND_ROLE).startswith(
        "the login has grants beyond the documented read-only role — the session of user PIPEBOT"
    )


def test_the_catalog_runs_no_show_but_its_own(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url, [pg_warehouse.schema]) as catalog:
        for statement in ("SHOW search_path", "DROP TABLE x", 'SHOW GRANTS TO USER "X"'):
            with pytest.raises(ReadOnlyRefused):
                catalog._show(statement, operation="privileges")


# Source: the IAM Policy resource (bindings of role and members) of Resource Manager
# projects.getIamPolicy, and the Dataset resource's `access` entries of BigQuery datasets.get
# (cloud.google.com reference pages), read 2026-12-03; composed, not from a live project.
BQ_MEMBER = "serviceAccount:pipebot@acme-data.iam.gserviceaccount.com"
BQ_POLICY: dict[str, Any] = {
    "version": 1,
    "etag": "BwYk2k1xQ0E=",
    "bindings": [
        {"role": "roles/bigquery.jobUser", "members": [BQ_MEMBER]},
        {"role": "roles/bigquery.metadataViewer", "members": [BQ_MEMBER, "group:data@acme.io"]},
        {"role": "roles/bigquery.admin", "members": ["group:data@acme.io"]},
    ],
}


def test_bigquery_documented_roles_pass_and_extra_ones_are_named() -> None:
    datasets = {"marts": [{"role": "roles/bigquery.metadataViewer", "iamMember": BQ_MEMBER}]}
    assert privileges.bigquery_abilities(BQ_MEMBER, BQ_POLICY, datasets) == []
    policy = {
        "bindings": [
            *BQ_POLICY["bindings"],
            {"role": "roles/bigquery.dataEditor", "members": [BQ_MEMBER]},
        ]
    }
    datasets["raw"] = [
        {"role": "WRITER", "userByEmail": "pipebot@acme-data.iam.gserviceaccount.com"},
        {"role": "OWNER", "specialGroup": "projectOwners"},
    ]
    found = privileges.bigquery_abilities(BQ_MEMBER, policy, datasets)
    assert [a.what for a in found] == [
        f"{BQ_MEMBER} has roles/bigquery.dataEditor on the project, beyond the documented roles",
        f"{BQ_MEMBER} has roles/bigquery.dataEditor on dataset raw, beyond the documented roles",
    ]
    assert found[0].revoke == (
        f"gcloud projects remove-iam-policy-binding PROJECT --member={BQ_MEMBER} "
        "--role=roles/bigquery.dataEditor"
    )


# Source: the EffectivePermissionsList answer of Unity Catalog's
# GET /api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}
# (docs.databricks.com/api/uc-grants), read 2026-12-03; composed, not from a live workspace.
DATABRICKS_EFFECTIVE = {
    "privilege_assignments": [
        {
            "principal": "pipebot-sp",
            "privileges": [
                {"privilege": "USE_CATALOG"},
                {"privilege": "BROWSE"},
                {
                    "privilege": "USE_SCHEMA",
                    "inherited_from_type": "CATALOG",
                    "inherited_from_name": "main",
                },
            ],
        },
        {"principal": "data-engineers", "privileges": [{"privilege": "ALL_PRIVILEGES"}]},
    ]
}


def test_databricks_documented_privileges_pass_and_extra_ones_are_named() -> None:
    assert privileges.databricks_abilities("pipebot-sp", "catalog main", DATABRICKS_EFFECTIVE) == []
    extra = {
        "privilege_assignments": [
            {
                "principal": "pipebot-sp",
                "privileges": [
                    {"privilege": "USE_CATALOG"},
                    {
                        "privilege": "MODIFY",
                        "inherited_from_type": "CATALOG",
                        "inherited_from_name": "main",
                    },
                    {"privilege": "SELECT"},
                ],
            }
        ]
    }
    found = privileges.databricks_abilities("pipebot-sp", "schema main.marts", extra)
    assert [str(a) for a in found] == [
        "pipebot-sp has MODIFY on schema main.marts (granted on catalog main), which can change "
        "data or objects: REVOKE MODIFY ON CATALOG main FROM `pipebot-sp`",
        "pipebot-sp has SELECT on schema main.marts (granted on schema main.marts), which reads "
        "data: REVOKE SELECT ON SCHEMA main.marts FROM `pipebot-sp`",
    ]
