"""
### orders_daily

Builds the daily orders table (dbt models `stg_orders` → `fct_orders` → `orders_daily`)
from `raw.orders`, then refreshes the orders dashboard and tells the team.

Owner: **dana**. In the sample environment this run FAILS: the shop renamed the `amount`
column of `raw.orders`, so `transform` raises `KeyError` and the downstream tasks end
`upstream_failed`.
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2 (the second harness): the same DAG, older import paths
    from airflow import DAG
    from airflow.decorators import task

RAW_ORDERS_COLUMNS = ("order_id", "customer_id", "total_cents", "status", "ordered_at")

with DAG(
    dag_id="orders_daily",
    description="Daily orders table and dashboard (dbt: stg_orders, fct_orders, orders_daily)",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["shop", "orders", "dbt"],
    doc_md=__doc__,
    default_args={"owner": "dana", "retries": 0},
):

    @task
    def check_source() -> list[str]:
        print(f"raw.orders has columns: {', '.join(RAW_ORDERS_COLUMNS)}")
        return list(RAW_ORDERS_COLUMNS)

    @task
    def transform(columns: list[str]) -> None:
        print("building stg_orders from raw.orders")
        rows = [dict.fromkeys(columns, 1)]
        if "amount" not in columns:
            raise KeyError(
                "column 'amount' missing from raw.orders — upstream schema changed "
                f"(found: {', '.join(columns)})"
            )
        print(f"built fct_orders with {len(rows)} rows")

    @task
    def publish_dashboard() -> None:
        print("refreshing the orders dashboard")

    @task
    def notify() -> None:
        print("posting the daily orders summary")

    transform(check_source()) >> publish_dashboard() >> notify()
