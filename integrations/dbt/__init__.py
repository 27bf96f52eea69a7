"""dbt, read-only: local artifacts (a ``target/`` folder) and dbt Cloud (Admin API v2)."""

from integrations.dbt.cloud import CloudProject, DbtCloudClient
from integrations.dbt.project import ArtifactsProject
from integrations.dbt.toolset import dbt_toolset

__all__ = ["ArtifactsProject", "CloudProject", "DbtCloudClient", "dbt_toolset"]
