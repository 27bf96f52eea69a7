"""How fast the warehouse catalog reads a big schema, against SQLAlchemy reflection.

Builds (once) a schema of 5,000 tables × 20 columns in the PostgreSQL database ``test`` of this
machine, then times:

- ``Catalog.tables(schema)``: pipebot's bulk pg_catalog statement, guard and mapping included;
- SQLAlchemy ``Inspector.get_multi_columns(schema=…)``;
- SQLAlchemy ``Inspector.get_columns`` once per table (what naive reflection does).

It prints figures; it is not a test. The schema is kept between runs (creating it takes a
while) and reused when complete; ``--drop`` removes it.

    .venv/bin/python bench/bench_catalog.py            # full per-table baseline (~11 s)
    .venv/bin/python bench/bench_catalog.py --quick    # per-table on 500 tables, extrapolated
    .venv/bin/python bench/bench_catalog.py --drop
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from integrations.warehouse.catalog import Catalog

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "pipebot_bench_catalog"
BATCH = 1_000  # one transaction per batch: 5,000 CREATEs at once exceed max_locks_per_transaction
TYPES = (
    "bigint",
    "integer",
    "text",
    "varchar(64)",
    "numeric(18,2)",
    "timestamptz",
    "date",
    "boolean",
    "jsonb",
    "double precision",
)


def column_ddl(index: int) -> str:
    kind = TYPES[index % len(TYPES)]
    not_null = " NOT NULL" if index % 3 == 0 else ""
    return f"c{index:02d} {kind}{not_null}"


def existing_shape(engine: Engine) -> tuple[int, int]:
    """(tables, tables with exactly the expected column count) in the bench schema."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT count(a.attnum) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                "AND NOT a.attisdropped "
                "WHERE n.nspname = :schema AND c.relkind = 'r' GROUP BY c.oid"
            ),
            {"schema": SCHEMA},
        ).all()
    return len(rows), sum(1 for (count,) in rows if count > 0)


def build(engine: Engine, tables: int, columns: int) -> None:
    found, complete = existing_shape(engine)
    if found == tables and complete == tables:
        print(f"reusing schema {SCHEMA}: {tables:,} tables × {columns} columns")
        return
    print(f"creating schema {SCHEMA}: {tables:,} tables × {columns} columns, {BATCH:,} per batch")
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    body = ", ".join(column_ddl(i) for i in range(columns))
    for first in range(0, tables, BATCH):
        with engine.begin() as connection:
            for number in range(first, min(first + BATCH, tables)):
                connection.exec_driver_sql(f'CREATE TABLE "{SCHEMA}".t{number:05d} ({body})')
        print(f"  {min(first + BATCH, tables):,} tables", flush=True)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'ANALYZE "{SCHEMA}".t00000')
    print(f"created in {time.perf_counter() - started:.1f} s")


def best_of(runs: int, action: Callable[[], object]) -> tuple[float, object]:
    timings: list[float] = []
    result: object = None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        timings.append(time.perf_counter() - started)
    return min(timings), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (database test)")
    parser.add_argument("--tables", type=int, default=5_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="time per-table reflection on 500 tables and extrapolate",
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of the fast methods (best)")
    parser.add_argument("--drop", action="store_true", help="drop the bench schema and exit")
    args = parser.parse_args()

    engine = create_engine(args.url)
    if args.drop:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        print(f"dropped schema {SCHEMA}")
        return
    build(engine, args.tables, args.columns)

    catalog = Catalog(args.url, [SCHEMA], row_cap=max(args.tables * 2, 10_000))
    catalog.tables(SCHEMA)  # warm the pool and the server's catalog caches for every method
    ours, tables = best_of(args.runs, lambda: catalog.tables(SCHEMA))
    assert isinstance(tables, list)
    columns = sum(len(t.columns) for t in tables)
    if len(tables) != args.tables or columns != args.tables * args.columns:
        raise SystemExit(f"unexpected shape: {len(tables)} tables, {columns} columns")

    # Where Catalog.tables spends its time: the guarded statement (server + transfer) versus
    # turning 5,000 rows into Table/Column values.
    params = {"schemas": [SCHEMA], "name": None}
    query, _ = best_of(
        args.runs,
        lambda: catalog._select(catalog.sql.relations, params, limit=catalog.row_cap + 1),
    )

    # Columns are built when first looked at (bot.facts.Columns); this is the cost of looking
    # at every one of them, for a caller that does.
    def read_everything() -> int:
        return sum(len(tuple(t.columns)) for t in catalog.tables(SCHEMA))

    materialized, _ = best_of(args.runs, read_everything)

    multi, _ = best_of(args.runs, lambda: inspect(engine).get_multi_columns(schema=SCHEMA))

    names = [t.name for t in tables]
    sample = names if not args.quick else random.Random(7).sample(names, 500)
    inspector = inspect(engine)
    started = time.perf_counter()
    for name in sample:
        inspector.get_columns(name, schema=SCHEMA)
    elapsed = time.perf_counter() - started
    per_table = elapsed / len(sample) * len(names)

    print()
    print(f"PostgreSQL {args.url.rsplit('@', 1)[-1]}, schema {SCHEMA}: ", end="")
    print(f"{len(tables):,} tables, {columns:,} columns")
    print(f"{'method':62} {'seconds':>8} {'vs per-table':>13}")
    rows = [
        (f"pipebot Catalog.tables(schema), best of {args.runs}", ours),
        (f"  … and every Column object built, best of {args.runs}", materialized),
        (f"SQLAlchemy Inspector.get_multi_columns(schema=…), best of {args.runs}", multi),
    ]
    label = "SQLAlchemy Inspector.get_columns, one call per table"
    if args.quick:
        label += " (EXTRAPOLATED)"
    rows.append((label, per_table))
    for name, seconds in rows:
        print(f"{name:62} {seconds:8.3f} {per_table / seconds:12.1f}×")
    print(
        f"  Catalog.tables breakdown: guarded statement + fetch {query:.3f} s, "
        f"building Table/Column values ≈ {max(ours - query, 0):.3f} s"
    )
    if args.quick:
        print(
            f"(per-table figure extrapolated: {len(sample)} tables timed in {elapsed:.2f} s, "
            f"scaled to {len(names):,})"
        )
    spread = statistics.mean(len(t.columns) for t in tables)
    print(f"(Catalog.tables target < 0.5 s; mean columns per table {spread:.0f})")
    with open("/proc/loadavg") as loadavg:
        print(f"(machine load average while measuring: {loadavg.read().split()[0]})")
    catalog.close()
    engine.dispose()


if __name__ == "__main__":
    main()
