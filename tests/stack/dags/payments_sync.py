"""
### payments_sync

Syncs settled payments from the payment provider into `raw.payments` (dbt source
`raw.payments`, model `stg_payments`).

Owner: **data-platform**. The provider's API is flaky: in the sample environment the first
try of `sync_payments` fails with a `ConnectionError` and the retry succeeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG, get_current_context, task
except ImportError:  # Airflow 2 (the second harness): the same DAG, older import paths
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.python import get_current_context

with DAG(
    dag_id="payments_sync",
    description="Sync settled payments into raw.payments",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["shop", "payments"],
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(seconds=2)},
):

    @task
    def sync_payments() -> int:
        attempt = get_current_context()["ti"].try_number
        print(f"calling payments provider (attempt {attempt})")
        if attempt == 1:
            raise ConnectionError(
                "payments API at payments.internal:443 refused the connection (attempt 1)"
            )
        print("synced 121 settled payments")
        return 121

    sync_payments()
