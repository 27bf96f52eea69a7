"""The bundled demo environment: what `pipebot demo` and the evals read.

- ``airflow/`` — answers of a real Airflow 3 (the sample DAGs of ``tests/stack/dags``), recorded
  by ``make record-demo`` and replayed offline by `ReplayAdapter`;
- ``dbt/`` — the artifacts of a real dbt-core + dbt-duckdb build of the sample project;
- ``warehouse.duckdb`` — the DuckDB warehouse that build produced.

The clock is frozen at the recording time, so "failed in the last 24 hours" stays true of the
recorded data. Nothing here is used outside the demo and the evals.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from pathlib import Path

from bot import phrases
from bot.ports import Sources
from bot.tools import Toolset
from integrations.airflow import AirflowClient, airflow_toolset
from integrations.dbt import ArtifactsProject, dbt_toolset
from integrations.replay import ReplayAdapter
from integrations.warehouse import Catalog, warehouse_toolset

# The recorded server's address; nothing listens there — the replay adapter answers.
DEMO_AIRFLOW_URL = "http://airflow.demo.invalid"


def data_dir() -> Path:
    return Path(str(resources.files(__name__)))


def recorded_at() -> datetime:
    index = json.loads((data_dir() / "airflow" / "index.json").read_text(encoding="utf-8"))
    return datetime.fromisoformat(index["recorded_at"])


def demo_sources() -> Sources:
    root = data_dir()
    frozen = recorded_at()
    airflow = AirflowClient(
        DEMO_AIRFLOW_URL,
        username="viewer",
        password="demo",
        api_version="v2",
        adapter=ReplayAdapter(root / "airflow"),
    )
    dbt = ArtifactsProject(root / "dbt")
    warehouse = Catalog(f"duckdb:///{root / 'warehouse.duckdb'}")
    toolsets: list[Toolset] = [
        airflow_toolset(airflow),
        dbt_toolset(dbt),
        warehouse_toolset(warehouse),
    ]
    return Sources(
        airflow=airflow,
        dbt=dbt,
        warehouse=warehouse,
        toolsets=tuple(toolsets),
        now=lambda: frozen,
        label=f"demo environment recorded {phrases.timestamp(frozen)}",
    )
