"""Warehouse metadata, read-only: `Catalog` (PostgreSQL, DuckDB, SQLite), its SQL guard and
the agent's tools.

    catalog = Catalog.from_settings(settings.warehouse)
    toolset = warehouse_toolset(catalog)
"""

from integrations.warehouse.catalog import SUPPORTED_DIALECTS, Catalog
from integrations.warehouse.guard import POLICIES, CatalogPolicy, GuardedSql, SqlGuard
from integrations.warehouse.sql import CATALOG_SQL, CatalogSql
from integrations.warehouse.toolset import warehouse_toolset

__all__ = [
    "CATALOG_SQL",
    "POLICIES",
    "SUPPORTED_DIALECTS",
    "Catalog",
    "CatalogPolicy",
    "CatalogSql",
    "GuardedSql",
    "SqlGuard",
    "warehouse_toolset",
]
