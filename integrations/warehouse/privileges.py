"""What the warehouse login itself could write, and what to revoke — for `pipebot doctor`.

The guard and the read-only transaction keep pipebot's own statements from writing. They cannot
stop what the *login* may do by other paths: a superuser can switch ``transaction_read_only``
off, ``dblink`` opens a second connection outside the read-only transaction, a user-defined
function runs with whatever the role may do. So doctor checks the login and fails, naming what
to revoke, when it can write anything. pipebot needs a role that can only read the catalog
(deploy/warehouse-readonly-role.sql).

PostgreSQL is checked live with `POSTGRES_SQL` (one guarded catalog SELECT). For the other
warehouses the check is a function over the rows or JSON of the call that lists the login's
grants; their catalogs make the call in `check` (``pipebot doctor``) and hand the answer over,
so each step is testable on its own (no local server reports real grants):

- Snowflake: `SNOWFLAKE_SESSION_SQL` names the current role and the secondary roles in effect
  (`snowflake_secondary_abilities`), then `snowflake_grants_sql` (``SHOW GRANTS TO ROLE``)
  rows → `snowflake_abilities`; a role granted to the role counts as a grant beyond, so the
  role hierarchy needs no walk;
- BigQuery: ``projects.getIamPolicy`` (Resource Manager) and ``datasets.get`` ``access`` →
  `bigquery_abilities`;
- Databricks: ``GET /api/2.1/unity-catalog/effective-permissions/{type}/{name}?principal=`` →
  `databricks_abilities`.

`summary` words a failed check the same way for every warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROLE_FILE = "deploy/warehouse-readonly-role.sql"

# Extensions whose functions reach outside the read-only transaction: another connection
# (dblink), files (adminpack), scheduled or background SQL (pg_cron, pg_background), the network
# (http), cloud services (aws_s3, aws_lambda). Foreign data wrappers (postgres_fdw …) are checked
# through USAGE on the wrapper and on its servers instead: their handler functions are PUBLIC.
RISKY_EXTENSIONS = (
    "dblink",
    "adminpack",
    "pg_cron",
    "pg_background",
    "http",
    "pgsql_http",
    "aws_s3",
    "aws_lambda",
    "log_fdw",
)

# Roles whose membership lets a login write, or run programs and write files on the server.
WRITING_ROLES = ("pg_write_all_data", "pg_write_server_files", "pg_execute_server_program")

# One row per ability: (ability, object, amount, example). The first row names the login.
# Table privileges are checked in :schemas (the configured schemas, or all usable ones); CREATE on
# any non-system schema, since a login that can create objects anywhere can write.
POSTGRES_SQL = """
SELECT 'login' AS ability,
       CAST(CURRENT_USER AS TEXT) AS object,
       CAST(0 AS BIGINT) AS amount,
       CAST(NULL AS TEXT) AS example
UNION ALL
SELECT 'superuser', CAST(r.rolname AS TEXT), 1, NULL
FROM pg_catalog.pg_roles AS r
WHERE r.rolname = CURRENT_USER AND r.rolsuper
UNION ALL
SELECT 'createrole', CAST(r.rolname AS TEXT), 1, NULL
FROM pg_catalog.pg_roles AS r
WHERE r.rolname = CURRENT_USER AND r.rolcreaterole
UNION ALL
SELECT 'createdb', CAST(r.rolname AS TEXT), 1, NULL
FROM pg_catalog.pg_roles AS r
WHERE r.rolname = CURRENT_USER AND r.rolcreatedb
UNION ALL
SELECT 'member', CAST(r.rolname AS TEXT), 1, NULL
FROM pg_catalog.pg_roles AS r
WHERE r.rolname <> CURRENT_USER
  AND pg_has_role(CURRENT_USER, r.oid, 'MEMBER')
  AND (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb
       OR r.rolname IN ('pg_write_all_data', 'pg_write_server_files',
                        'pg_execute_server_program'))
UNION ALL
SELECT 'table', CAST(n.nspname AS TEXT), COUNT(*), CAST(MIN(c.relname) AS TEXT)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname IN :schemas
  AND has_schema_privilege(n.oid, 'USAGE')
  AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
       OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))
GROUP BY n.nspname
UNION ALL
SELECT 'create on schema', CAST(n.nspname AS TEXT), 1, NULL
FROM pg_catalog.pg_namespace AS n
WHERE n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\\_%'
  AND has_schema_privilege(n.oid, 'CREATE')
UNION ALL
SELECT 'create on database', CAST(current_database() AS TEXT), 1, NULL
WHERE has_database_privilege(current_database(), 'CREATE')
UNION ALL
SELECT 'extension', CAST(e.extname AS TEXT), COUNT(*),
       CAST(MIN(CAST(pn.nspname AS TEXT) || '.' || CAST(p.proname AS TEXT)) AS TEXT)
FROM pg_catalog.pg_extension AS e
JOIN pg_catalog.pg_depend AS d
  ON d.refobjid = e.oid AND d.deptype = 'e'
 AND d.refclassid = CAST('pg_catalog.pg_extension' AS REGCLASS)
 AND d.classid = CAST('pg_catalog.pg_proc' AS REGCLASS)
JOIN pg_catalog.pg_proc AS p ON p.oid = d.objid
JOIN pg_catalog.pg_namespace AS pn ON pn.oid = p.pronamespace
WHERE e.extname IN :extensions
  AND has_function_privilege(p.oid, 'EXECUTE')
GROUP BY e.extname
UNION ALL
SELECT 'foreign data wrapper', CAST(w.fdwname AS TEXT), 1, NULL
FROM pg_catalog.pg_foreign_data_wrapper AS w
WHERE has_foreign_data_wrapper_privilege(w.oid, 'USAGE')
UNION ALL
SELECT 'foreign server', CAST(s.srvname AS TEXT), 1, NULL
FROM pg_catalog.pg_foreign_server AS s
WHERE has_server_privilege(s.oid, 'USAGE')
"""


@dataclass(frozen=True)
class WriteAbility:
    """One way the login could write, and how to take it away."""

    what: str  # "the login pipebot is a superuser"
    revoke: str  # what to do: "use a read-only role — deploy/warehouse-readonly-role.sql"
    sql: str = ""  # the one statement that takes it away, when there is one

    def __str__(self) -> str:
        return f"{self.what}: {self.revoke}"


# How a failed check starts: PostgreSQL's checks are about writing; the others' about grants
# beyond the documented role (which may also read data).
WRITES = "the login can write"
BEYOND_ROLE = "the login has grants beyond the documented read-only role"
_SHOWN = 5


def summary(abilities: Sequence[WriteAbility], headline: str = WRITES) -> str:
    """A doctor line: the headline and the first few abilities with what to revoke."""
    shown = "; ".join(str(a) for a in abilities[:_SHOWN])
    more = f"; and {len(abilities) - _SHOWN} more" if len(abilities) > _SHOWN else ""
    return f"{headline} — {shown}{more}"


def _revoke(what: str, sql: str, note: str = "") -> WriteAbility:
    return WriteAbility(what, f"{sql}{f' ({note})' if note else ''}", sql)


def postgres_parameters(schemas: Sequence[str]) -> dict[str, Any]:
    """Bind values for `POSTGRES_SQL`: the schemas whose tables are checked."""
    # An empty expanding IN is valid SQL that matches nothing; a placeholder keeps the
    # statement's shape the same for the guard's cache either way.
    return {"schemas": list(schemas) or [""], "extensions": list(RISKY_EXTENSIONS)}


def postgres_abilities(rows: Iterable[Mapping[str, Any]]) -> list[WriteAbility]:
    """What `POSTGRES_SQL`'s rows say the login can write, most serious first."""
    rows = list(rows)
    login = next((str(r["object"]) for r in rows if r["ability"] == "login"), "the login")
    quoted = _pg_ident(login)
    found: list[WriteAbility] = []
    superuser = any(r["ability"] == "superuser" for r in rows)
    if superuser:
        # Everything else follows from it; listing every table would bury the one fix.
        return [
            WriteAbility(
                f"the login {login} is a superuser (it can write anything, and turn read-only "
                "transactions off)",
                f"use a read-only role — {ROLE_FILE}",
            )
        ]
    for row in rows:
        kind, name = str(row["ability"]), str(row["object"])
        amount, example = int(row["amount"] or 0), row["example"]
        if kind == "createrole":
            found.append(
                _revoke(
                    f"the login {login} may create roles (CREATEROLE)",
                    f"ALTER ROLE {quoted} NOCREATEROLE",
                )
            )
        elif kind == "createdb":
            found.append(
                _revoke(
                    f"the login {login} may create databases (CREATEDB)",
                    f"ALTER ROLE {quoted} NOCREATEDB",
                )
            )
        elif kind == "member":
            found.append(
                _revoke(
                    f"the login {login} can act as role {name}, which can write",
                    f"REVOKE {_pg_ident(name)} FROM {quoted}",
                )
            )
        elif kind == "table":
            shown = f" (e.g. {name}.{example})" if example else ""
            found.append(
                _revoke(
                    f"the login {login} may INSERT, UPDATE, DELETE or TRUNCATE {amount} "
                    f"table(s) in schema {name}{shown}",
                    f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA "
                    f"{_pg_ident(name)} FROM {quoted}",
                    "and from PUBLIC or any role it is in; an owner keeps them: use a role "
                    "that owns nothing",
                )
            )
        elif kind == "create on schema":
            found.append(
                _revoke(
                    f"the login {login} may CREATE objects in schema {name}",
                    f"REVOKE CREATE ON SCHEMA {_pg_ident(name)} FROM {quoted}, PUBLIC",
                )
            )
        elif kind == "create on database":
            found.append(
                _revoke(
                    f"the login {login} may CREATE schemas in database {name}",
                    f"REVOKE CREATE ON DATABASE {_pg_ident(name)} FROM {quoted}, PUBLIC",
                )
            )
        elif kind == "extension":
            schema = str(example).rsplit(".", 1)[0] if example else "its schema"
            found.append(
                _revoke(
                    f"the login {login} may execute {amount} function(s) of extension {name} "
                    f"(e.g. {example}), which reach outside the read-only transaction",
                    f"REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {_pg_ident(schema)} "
                    f"FROM {quoted}, PUBLIC",
                    f"or DROP EXTENSION {_pg_ident(name)} if nothing needs it",
                )
            )
        elif kind == "foreign data wrapper":
            found.append(
                _revoke(
                    f"the login {login} may use foreign data wrapper {name} (it can create "
                    "servers that write elsewhere)",
                    f"REVOKE USAGE ON FOREIGN DATA WRAPPER {_pg_ident(name)} FROM {quoted}",
                )
            )
        elif kind == "foreign server":
            found.append(
                _revoke(
                    f"the login {login} may use foreign server {name}",
                    f"REVOKE USAGE ON FOREIGN SERVER {_pg_ident(name)} FROM {quoted}",
                )
            )
    return found


# --- Snowflake -------------------------------------------------------------------------------

# The documented role (docs/warehouses.md): USAGE on the warehouse, database and schemas,
# REFERENCES on tables and views, and the SNOWFLAKE.USAGE_VIEWER database role for history.
# Which role to ask about, and which others the session also acts with: since the 2024_08
# bundle a user's DEFAULT_SECONDARY_ROLES is ('ALL'), so every role granted to the user adds its
# privileges to each statement (docs.snowflake.com/en/sql-reference/functions/
# current_secondary_roles: a JSON object, ``{"roles": "A,B", "value": "ALL"}``).
SNOWFLAKE_SESSION_SQL = (
    "SELECT CURRENT_ROLE() AS role_name, CURRENT_USER() AS user_name, "
    "CURRENT_SECONDARY_ROLES() AS secondary_roles"
)


def snowflake_grants_sql(role: str) -> str:
    """``SHOW GRANTS TO ROLE`` for `role` exactly as CURRENT_ROLE() names it: a quoted identifier
    (SHOW takes no bind parameters; a quoted name is case-sensitive and cannot end the
    statement)."""
    return f"SHOW GRANTS TO ROLE {_sf_ident(role)}"


def _sf_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def snowflake_login_abilities(
    session: Mapping[str, Any], grants: Iterable[Mapping[str, Any]]
) -> list[WriteAbility]:
    """What the `SNOWFLAKE_SESSION_SQL` row and the ``SHOW GRANTS TO ROLE`` rows of its role
    say the login can do beyond the documented role: secondary roles first, then grants."""
    role = str(session.get("role_name") or "")
    user = str(session.get("user_name") or "")
    return [
        *snowflake_secondary_abilities(user, role, session.get("secondary_roles")),
        *snowflake_abilities(role, grants),
    ]


def snowflake_secondary_abilities(user: str, role: str, secondary: Any) -> list[WriteAbility]:
    """Secondary roles in effect beyond `role` (and PUBLIC, which every role has): their grants
    apply to pipebot's statements too, and are not the documented role's."""
    if isinstance(secondary, str):
        try:
            secondary = json.loads(secondary) if secondary.strip() else {}
        except ValueError:
            secondary = {"roles": secondary}
    listed = str((secondary or {}).get("roles") or "")
    others = [
        r.strip()
        for r in listed.split(",")
        if r.strip() and r.strip().upper() not in {role.upper(), "PUBLIC"}
    ]
    if not others:
        return []
    return [
        _revoke(
            f"the session of user {user} also acts with secondary role(s) "
            f"{', '.join(others)}, beyond role {role}",
            f"ALTER USER {_sf_ident(user)} SET DEFAULT_SECONDARY_ROLES = ()",
        )
    ]


_SNOWFLAKE_ALLOWED = {
    ("USAGE", "WAREHOUSE"),
    ("USAGE", "DATABASE"),
    ("USAGE", "SCHEMA"),
    ("REFERENCES", "TABLE"),
    ("REFERENCES", "VIEW"),
    ("REFERENCES", "MATERIALIZED_VIEW"),
    ("REFERENCES", "EXTERNAL_TABLE"),
    ("REFERENCES", "DYNAMIC_TABLE"),
}
_SNOWFLAKE_ALLOWED_ROLES = {"SNOWFLAKE.USAGE_VIEWER", "USAGE_VIEWER"}
_SNOWFLAKE_READS = {"SELECT", "READ"}


def snowflake_abilities(role: str, grants: Iterable[Mapping[str, Any]]) -> list[WriteAbility]:
    """Grants in ``SHOW GRANTS TO ROLE <role>`` rows beyond the documented metadata role.

    Rows carry ``privilege``, ``granted_on``, ``name`` (the column names are lower case both
    through the connector and through SQLAlchemy). A role granted to the role (``USAGE`` on a
    ``ROLE``) brings all of *its* grants, so it counts too, as does ``SELECT`` (that reads data).
    """
    found: list[WriteAbility] = []
    for grant in grants:
        privilege = str(grant.get("privilege") or "").upper()
        on = str(grant.get("granted_on") or "").upper().replace(" ", "_")
        name = str(grant.get("name") or "")
        if (privilege, on) in _SNOWFLAKE_ALLOWED:
            continue
        if (
            on == "DATABASE_ROLE"
            and privilege == "USAGE"
            and name.upper() in _SNOWFLAKE_ALLOWED_ROLES
        ):
            continue
        target = f"{on.replace('_', ' ')} {name}".strip()
        if on in ("ROLE", "DATABASE_ROLE"):
            what = f"role {role} inherits role {name} and all of its grants"
            revoke = f"REVOKE {on.replace('_', ' ')} {name} FROM ROLE {role}"
        elif privilege == "OWNERSHIP":
            # Ownership is not revoked but handed to another role.
            found.append(
                WriteAbility(
                    f"role {role} owns {target}",
                    f"GRANT OWNERSHIP ON {target} TO ROLE <its owner> COPY CURRENT GRANTS",
                )
            )
            continue
        else:
            does = "reads data" if privilege in _SNOWFLAKE_READS else "goes beyond metadata"
            what = f"role {role} has {privilege} on {target}, which {does}"
            revoke = f"REVOKE {privilege} ON {target} FROM ROLE {role}"
        found.append(_revoke(what, revoke))
    return found


# --- BigQuery --------------------------------------------------------------------------------

# Documented: metadataViewer on the datasets, jobUser on the billing project, and resourceViewer
# for the cost views (JOBS in every project). Dataset ACL entries use legacy names too.
_BIGQUERY_ALLOWED = {
    "roles/bigquery.metadataViewer",
    "roles/bigquery.jobUser",
    "roles/bigquery.resourceViewer",
}
_BIGQUERY_LEGACY = {"READER": "roles/bigquery.dataViewer", "WRITER": "roles/bigquery.dataEditor"}
_BIGQUERY_LEGACY |= {"OWNER": "roles/bigquery.dataOwner"}


def bigquery_abilities(
    member: str,
    project_policy: Mapping[str, Any],
    datasets: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> list[WriteAbility]:
    """Roles of `member` (``serviceAccount:pipebot@p.iam.gserviceaccount.com``) beyond the
    documented ones, from the project's IAM policy (``{"bindings": [{"role", "members"}]}``,
    Resource Manager ``projects.getIamPolicy``) and each dataset's ``access`` list
    (``datasets.get``: ``{"role": "WRITER", "userByEmail": …}`` or ``"iamMember"``)."""
    found: list[WriteAbility] = []
    for binding in project_policy.get("bindings") or ():
        role = str(binding.get("role") or "")
        if member in (binding.get("members") or ()) and role not in _BIGQUERY_ALLOWED:
            found.append(
                WriteAbility(
                    f"{member} has {role} on the project, beyond the documented roles",
                    f"gcloud projects remove-iam-policy-binding PROJECT --member={member} "
                    f"--role={role}",
                )
            )
    email = member.split(":", 1)[-1]
    for dataset, entries in (datasets or {}).items():
        for entry in entries:
            who = entry.get("userByEmail") or entry.get("iamMember") or ""
            if who not in (email, member):
                continue
            role = str(entry.get("role") or "")
            role = _BIGQUERY_LEGACY.get(role, role)
            if role in _BIGQUERY_ALLOWED:
                continue
            found.append(
                WriteAbility(
                    f"{member} has {role} on dataset {dataset}, beyond the documented roles",
                    f"remove the entry from the dataset's access list (bq update "
                    f"--source=… {dataset}, or the console's Sharing > Permissions)",
                )
            )
    return found


# --- Databricks ------------------------------------------------------------------------------

# Documented: USE CATALOG, USE SCHEMA and BROWSE (metadata without data).
_DATABRICKS_ALLOWED = {"USE_CATALOG", "USE_SCHEMA", "BROWSE"}
_DATABRICKS_READS = {"SELECT", "READ_VOLUME", "READ_FILES", "EXECUTE"}


def databricks_abilities(
    principal: str, securable: str, effective: Mapping[str, Any]
) -> list[WriteAbility]:
    """Privileges of `principal` on `securable` (``catalog main``) beyond the documented ones,
    from Unity Catalog's effective-permissions answer:
    ``{"privilege_assignments": [{"principal", "privileges": [{"privilege",
    "inherited_from_type", "inherited_from_name"}]}]}``."""
    found: list[WriteAbility] = []
    for assignment in effective.get("privilege_assignments") or ():
        if assignment.get("principal") != principal:
            continue
        for granted in assignment.get("privileges") or ():
            privilege = str(granted.get("privilege") or "")
            if privilege in _DATABRICKS_ALLOWED:
                continue
            source_type = granted.get("inherited_from_type")
            source = (
                f"{str(source_type).lower()} {granted.get('inherited_from_name')}"
                if source_type
                else securable
            )
            does = "reads data" if privilege in _DATABRICKS_READS else "can change data or objects"
            shown = privilege.replace("_", " ")
            found.append(
                WriteAbility(
                    f"{principal} has {shown} on {securable} (granted on {source}), which {does}",
                    f"REVOKE {shown} ON {source.upper().split(' ', 1)[0]} "
                    f"{source.split(' ', 1)[-1]} FROM `{principal}`",
                )
            )
    return found


def _pg_ident(name: str) -> str:
    plain = name.isidentifier() and name == name.lower() and name.isascii()
    return name if plain else '"' + name.replace('"', '""') + '"'
