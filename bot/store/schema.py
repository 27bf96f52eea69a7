"""Alembic migrations of the bot's store, run programmatically (`pipebot db upgrade`).

The migration scripts ship inside the package, so an installed pipebot can upgrade its database
without a checkout or an ``alembic.ini``.
"""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = "bot.store:migrations"


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """What our models describe (Alembic's filter when comparing them with a database).

    slack_sdk's installation and OAuth-state stores create their own ``slack_*`` tables, and
    procrastinate's schema (migration 0003) is its own.
    """
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", None)
    return not (table_name or "").startswith(("slack_", "procrastinate_"))


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["engine"] = engine
    return config


# Alembic loads its environment as module-level state: one migration at a time per process.
_LOCK = threading.Lock()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision` (default: the newest)."""
    config = _config(engine)
    with _LOCK, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_config(engine)).get_current_head()


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new migration from the models (a developer command)."""
    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
