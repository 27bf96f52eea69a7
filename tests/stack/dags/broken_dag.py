"""
### shop_refunds (broken on purpose)

Would sync refunds, but imports a vendor SDK that is not installed, so Airflow lists an
import error for this file and no DAG.
"""

from __future__ import annotations

from datetime import datetime

import shop_refunds_sdk  # not installed: this is the import error the tests look for

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2 (the second harness): the same DAG, older import paths
    from airflow import DAG
    from airflow.decorators import task

with DAG(
    dag_id="shop_refunds",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["shop", "refunds"],
    default_args={"owner": "dana"},
):

    @task
    def sync_refunds() -> None:
        shop_refunds_sdk.sync()

    sync_refunds()
