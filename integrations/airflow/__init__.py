"""Airflow connector: a read-only client (`AirflowClient`) and the agent's toolset."""

from integrations.airflow.client import AirflowClient
from integrations.airflow.toolset import airflow_toolset

__all__ = ["AirflowClient", "airflow_toolset"]
