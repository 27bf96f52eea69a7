"""Values shared by the warehouse tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class PgWarehouse:
    url: str  # search_path = schema; the URL the catalog is given
    schema: str  # sample tables, views, a materialized view, a partitioned table
    staging: str  # a second schema with two tables


def search_path_schema(url: str) -> str:
    """The schema a `pg_url` fixture URL sets as its search_path."""
    options = str(make_url(url).query["options"])
    return options.split("=", 1)[1]


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
