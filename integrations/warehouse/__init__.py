"""Warehouse metadata, read-only: `Catalog` (SQL catalogs), `BigQueryCatalog` and
`DatabricksCatalog` (REST catalogs), the SQL guard and the agent's tools; and the warehouse's
spend and query history (`open_usage`, `usage_toolset`).

    catalog = open_catalog(settings.warehouse)   # picks the catalog by the URL's scheme
    toolset = warehouse_toolset(catalog)
    usage = open_usage(settings.warehouse, catalog)  # None where there is none to read
"""

from bot.errors import ConfigError
from bot.settings import WarehouseSettings
from integrations.warehouse.catalog import SUPPORTED_DIALECTS, Catalog
from integrations.warehouse.guard import POLICIES, CatalogPolicy, GuardedSql, SqlGuard
from integrations.warehouse.sql import CATALOG_SQL, CatalogSql
from integrations.warehouse.toolset import DescribedCatalog, warehouse_toolset
from integrations.warehouse.usage import open_usage
from integrations.warehouse.usage_toolset import usage_toolset

__all__ = [
    "CATALOG_SQL",
    "POLICIES",
    "SUPPORTED_DIALECTS",
    "Catalog",
    "CatalogPolicy",
    "CatalogSql",
    "GuardedSql",
    "SqlGuard",
    "open_catalog",
    "open_usage",
    "usage_toolset",
    "warehouse_toolset",
]


def open_catalog(settings: WarehouseSettings) -> DescribedCatalog:
    """The catalog for ``PIPEBOT_WAREHOUSE__URL``: ``bigquery://`` and ``databricks://`` are
    read over their REST APIs (no SQL, no running warehouse); any other URL is a SQLAlchemy
    URL for `Catalog`. A missing driver extra is a one-line `ConfigError` naming it."""
    if settings.url is None:
        raise ConfigError("PIPEBOT_WAREHOUSE__URL is not set")
    scheme = settings.url.get_secret_value().split("://", 1)[0].lower()
    if scheme == "bigquery":
        from integrations.warehouse.bigquery import BigQueryCatalog

        return BigQueryCatalog.from_settings(settings)
    if scheme == "databricks":
        from integrations.warehouse.databricks import DatabricksCatalog

        return DatabricksCatalog.from_settings(settings)
    return Catalog.from_settings(settings)
