"""Warehouse relation names as dbt writes them (``"db"."schema"."table"``, `` `p`.`d`.`t` ``),
split into the (schema, table) a warehouse catalog is asked for."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ParseError


def locate(relation: str) -> tuple[str, str] | None:
    """(schema, table) of a dbt relation name such as ``"shop"."marts"."fct_orders"``; None
    when the name has no schema or cannot be read."""
    if not relation:
        return None
    try:
        # dbt-bigquery and dbt-databricks quote names with backticks, which sqlglot's default
        # dialect would keep as part of the name.
        table = exp.to_table(relation, dialect="bigquery" if "`" in relation else None)
    except ParseError:
        return None
    if not table.name or not table.db:
        return None
    return table.db, table.name
