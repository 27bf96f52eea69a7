"""Alembic environment: run by `bot.store.schema.upgrade`, which passes the connection in."""

from __future__ import annotations

from alembic import context

from bot.store.schema import include_object
from bot.store.tables import Base

connection = context.config.attributes["connection"]


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=include_object,
    # SQLite cannot ALTER most things in place; batch mode recreates tables when needed.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
