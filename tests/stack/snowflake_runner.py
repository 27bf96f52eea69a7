"""Runs in the fakesnow venv (see snowflake_stack.py): pipebot's `Catalog` and warehouse tools
against fakesnow's server, through snowflake-connector-python and snowflake-sqlalchemy.

Reads one JSON job on stdin — ``url``, ``schemas``, ``setup`` (SQL run first, as the server's
admin, through the same connector), ``calls`` — and prints one JSON answer: a result per call,
or ``{"error": <class>, "message": …}`` when the call raised.

With ``"serve": true`` the job is one line and the calls follow, one JSON line each, answered
one line each (errors with their ``reason`` and ``suggestions``) until stdin ends: the catalog
behind `tests.stack.snowflake_stack.RemoteCatalog`, which the playbooks in the main venv read.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from bot.errors import BotError
from bot.facts import Table
from integrations.warehouse import privileges
from integrations.warehouse.catalog import Catalog
from integrations.warehouse.toolset import warehouse_toolset


def table_json(table: Table) -> dict[str, Any]:
    return {
        "database": table.database,
        "schema": table.schema,
        "name": table.name,
        "kind": table.kind,
        "row_count": table.row_count,
        "size_bytes": table.size_bytes,
        "last_altered": table.last_altered.isoformat() if table.last_altered else None,
        "comment": table.comment,
        "columns": [list(c) for c in table.columns],
    }


def setup(url: str, statements: list[str]) -> None:
    parsed = make_url(url)
    lifted: dict[str, Any] = {k: parsed.query[k] for k in ("host", "port", "protocol")}
    lifted["port"] = int(str(lifted["port"]))
    engine = create_engine(
        parsed.difference_update_query(list(lifted)).set(database=None), connect_args=lifted
    )
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


def call(catalog: Catalog, what: list[Any], connected: dict[str, Any]) -> Any:
    kind, *args = what
    if kind == "connect_params":
        # What the dialect handed the connector at login (fakesnow ignores session parameters,
        # so the test reads them here, as SQLAlchemy's do_connect event sees them).
        return {k: v for k, v in connected.items() if k not in ("password", "user")}
    if kind == "schemas":
        return catalog.schemas()
    if kind == "tables":
        return [table_json(t) for t in catalog.tables(*args)]
    if kind == "table":
        return table_json(catalog.table(*args))
    if kind == "show_grants":
        # The doctor's SHOW, as the catalog runs it (fakesnow has no roles: see the test).
        return catalog._show(privileges.snowflake_grants_sql(*args), operation="privileges")
    if kind == "check":
        check = catalog.check()
        return {"ok": check.ok, "detail": check.detail, "version": check.version}
    if kind == "tool":
        name, params = args
        tools = {t.name: t for t in warehouse_toolset(catalog).tools()}
        result = tools[name].call(params)
        return {"status": result.status.value, "data": result.data, "error": result.error}
    raise ValueError(f"unknown call {kind!r}")


def serve(catalog: Catalog) -> None:
    hello = {
        "where": catalog.where,
        "row_cap": catalog.row_cap,
        "last_altered_means": catalog.last_altered_means,
    }
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        try:
            answer: Any = {"value": call(catalog, json.loads(line), {})}
        except BotError as exc:
            answer = {
                "error": type(exc).__name__,
                "reason": getattr(exc, "reason", str(exc)),
                "suggestions": list(getattr(exc, "suggestions", ())),
                "status": getattr(exc, "status", None),
            }
        print(json.dumps(answer, default=str), flush=True)


def main() -> None:
    job = json.loads(sys.stdin.readline())
    setup(job["url"], job.get("setup", []))
    if job.get("serve"):
        with Catalog(job["url"], job.get("schemas", []), **job.get("options", {})) as catalog:
            serve(catalog)
        return
    answers: list[Any] = []
    connected: dict[str, Any] = {}
    with Catalog(job["url"], job.get("schemas", []), **job.get("options", {})) as catalog:

        def on_connect(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            connected.update(params)

        event.listen(catalog._engine, "do_connect", on_connect)
        for what in job["calls"]:
            try:
                answers.append(call(catalog, what, connected))
            except BotError as exc:
                answers.append({"error": type(exc).__name__, "message": str(exc)})
    json.dump({"answers": answers}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
