"""`bot.review.sql`: which parent columns a query reads, and what each output is made from."""

from __future__ import annotations

from bot.review.sql import Parent, read_sql
from tests.review.support import rel

ORDERS = Parent("model.shop.orders", rel("orders"), ("order_id", "customer_id", "amount"))
CUSTOMERS = Parent("model.shop.customers", rel("customers"), ("customer_id", "email", "country"))


def test_ctes_joins_using_and_what_each_column_is_made_from() -> None:
    sql = f"""
        with totals as (
            select customer_id, sum(amount) as spent from {rel("orders")} group by customer_id
        )
        select c.customer_id, c.email, t.spent, coalesce(t.spent, 0) > 100 as big
        from {rel("customers")} as c left join totals as t using (customer_id)
    """
    reading = read_sql(sql, dialect="duckdb", parents=[ORDERS, CUSTOMERS])
    assert reading.reads == {
        "model.shop.orders": {"customer_id", "amount"},
        "model.shop.customers": {"customer_id", "email"},
    }
    assert reading.derives["spent"] == {("model.shop.orders", "amount")}
    assert reading.derives["big"] == {("model.shop.orders", "amount")}
    assert reading.derived_from("model.shop.customers", "email") == ["email"]
    # country is never read: the question has an answer, and it is no.
    assert reading.reads_column("model.shop.customers", "country") == ""
    assert reading.reads_column("model.shop.orders", "amount") == "sure"


def test_a_filter_is_a_read_without_an_output() -> None:
    reading = read_sql(
        f"select order_id from {rel('orders')} where amount > 0", dialect="duckdb", parents=[ORDERS]
    )
    assert reading.reads_column("model.shop.orders", "amount") == "sure"
    assert reading.derived_from("model.shop.orders", "amount") == []


def test_a_star_passes_every_known_column_on() -> None:
    reading = read_sql(f"select * from {rel('orders')}", dialect="duckdb", parents=[ORDERS])
    assert reading.reads["model.shop.orders"] == {"order_id", "customer_id", "amount"}
    assert reading.derives["amount"] == {("model.shop.orders", "amount")}
    unknown = Parent("model.shop.orders", rel("orders"))
    blind = read_sql(f"select * from {rel('orders')}", dialect="duckdb", parents=[unknown])
    assert blind.reads_column("model.shop.orders", "amount") == "maybe"


def test_unqualified_names_go_to_the_table_that_has_them() -> None:
    sql = (
        f"select email, amount from {rel('orders')} as o "
        f"join {rel('customers')} as c on o.customer_id = c.customer_id"
    )
    reading = read_sql(sql, dialect="duckdb", parents=[ORDERS, CUSTOMERS])
    assert reading.reads_column("model.shop.customers", "email") == "sure"
    assert reading.reads_column("model.shop.orders", "email") == ""
    # customer_id unqualified would fit both: each is only "maybe".
    both = read_sql(
        f"select customer_id from {rel('orders')}, {rel('customers')}",
        dialect="duckdb",
        parents=[ORDERS, CUSTOMERS],
    )
    assert both.reads_column("model.shop.orders", "customer_id") == "maybe"
    assert both.reads_column("model.shop.customers", "customer_id") == "maybe"


def test_unions_are_fed_by_position_and_renames_are_kept_as_written() -> None:
    sql = (
        f"select order_id as id, amount from {rel('orders')} "
        f"union all select customer_id, 0 from {rel('customers')}"
    )
    reading = read_sql(sql, dialect="duckdb", parents=[ORDERS, CUSTOMERS])
    assert reading.derives["id"] == {
        ("model.shop.orders", "order_id"),
        ("model.shop.customers", "customer_id"),
    }
    assert reading.expressions == {"id": "order_id", "amount": "amount"}


def test_a_scalar_subquery_reads_its_own_table() -> None:
    sql = (
        f"select c.customer_id, (select max(amount) from {rel('orders')}) as top "
        f"from {rel('customers')} as c"
    )
    reading = read_sql(sql, dialect="duckdb", parents=[ORDERS, CUSTOMERS])
    assert reading.reads_column("model.shop.orders", "amount") == "sure"
    assert reading.reads_column("model.shop.customers", "amount") == ""


def test_snowflake_names_match_whatever_their_case() -> None:
    parent = Parent("model.shop.orders", "ANALYTICS.MARTS.ORDERS", ("ORDER_ID", "AMOUNT"))
    reading = read_sql(
        "select Order_Id from analytics.marts.orders", dialect="snowflake", parents=[parent]
    )
    assert reading.reads == {"model.shop.orders": {"order_id"}}


def test_sql_that_does_not_parse_may_read_anything() -> None:
    reading = read_sql("select from where (", dialect="duckdb", parents=[ORDERS])
    assert reading.problem.startswith("its SQL could not be parsed")
    assert reading.reads_column("model.shop.orders", "amount") == "maybe"
