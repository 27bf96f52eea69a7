"""procrastinate 3.x job tables (PostgreSQL only)

PostgreSQL deployments run jobs on procrastinate. Its schema ships as SQL inside the package
(`SchemaManager.get_schema()`); it is applied here so `pipebot db upgrade` sets up everything.
procrastinate 3.4–3.10 share this schema; a later procrastinate SQL migration gets its own
revision (pyproject pins the minor version for that reason). SQLite skips this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 22:00:01
"""

from __future__ import annotations

from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_TABLES = ("procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs",
           "procrastinate_workers")
_TYPES = ("procrastinate_job_event_type", "procrastinate_job_status")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # psycopg reads "%" as a placeholder marker in a statement with no parameters too.
    bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in _TABLES:
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    bind.exec_driver_sql(
        """
        DO $$
        DECLARE f record;
        BEGIN
          FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                   JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE p.proname LIKE 'procrastinate%%' AND n.nspname = current_schema()
          LOOP EXECUTE 'DROP FUNCTION ' || f.sig || ' CASCADE'; END LOOP;
        END $$;
        """
    )
    for type_ in (*_TYPES, "procrastinate_job_to_defer_v1"):
        bind.exec_driver_sql(f"DROP TYPE IF EXISTS {type_} CASCADE")
