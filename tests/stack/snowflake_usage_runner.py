"""Runs in the fakesnow venv (see snowflake_stack.py): pipebot's `SqlUsage` and its tools over
a `Catalog` against fakesnow's server, through snowflake-connector-python and
snowflake-sqlalchemy — the same harness as snowflake_runner.py, for the usage views.

Reads one JSON job on stdin — ``url``, ``setup`` (SQL run first, as the server's admin),
``credit_price``, ``calls`` — and prints one JSON answer, a result per call or
``{"error": <class>, "message": …}``. Calls: ``["spend", since, until]``,
``["queries", since, until, {order, limit, failed_only, warehouse}]``,
``["tool", name, params, now]``, ``["check"]`` (times in ISO 8601).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.errors import BotError
from bot.facts import Price
from integrations.warehouse.catalog import Catalog
from integrations.warehouse.sql_usage import SqlUsage
from integrations.warehouse.usage_toolset import usage_toolset
from tests.stack.snowflake_runner import setup


def call(usage: SqlUsage, what: list[Any]) -> Any:
    kind, *args = what
    if kind == "spend":
        return asdict(usage.spend(datetime.fromisoformat(args[0]), datetime.fromisoformat(args[1])))
    if kind == "queries":
        since, until, options = args
        history = usage.queries(
            datetime.fromisoformat(since), datetime.fromisoformat(until), **options
        )
        return asdict(history)
    if kind == "tool":
        name, params, now = args
        clock = datetime.fromisoformat(now)
        tools = {t.name: t for t in usage_toolset(usage, now=lambda: clock).tools()}
        result = tools[name].call(params)
        return {
            "status": result.status.value,
            "data": result.data,
            "error": result.error,
            "invocation": result.invocation,
        }
    if kind == "check":
        check = usage.check()
        return {"ok": check.ok, "detail": check.detail}
    raise ValueError(f"unknown call {kind!r}")


def main() -> None:
    job = json.load(sys.stdin)
    setup(job["url"], job.get("setup", []))
    price = job.get("credit_price")
    answers: list[Any] = []
    with Catalog(job["url"], **job.get("options", {})) as catalog:
        usage = SqlUsage(
            catalog,
            price=Price(amount=price, currency="USD", per_label="credit", origin="the test's price")
            if price
            else None,
        )
        for what in job["calls"]:
            try:
                answers.append(call(usage, what))
            except BotError as exc:
                answers.append({"error": type(exc).__name__, "message": str(exc)})
    json.dump({"answers": answers}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
