"""What the REST catalogs (BigQuery, Databricks Unity Catalog) share: scoping to the configured
schemas, "not found" with close names, the row cap, and the doctor check.

A subclass lists schemas, lists one schema's relations and fetches one relation; everything a
caller sees — `schemas`, `tables`, `table`, `check` — behaves as `Catalog` does on PostgreSQL,
so the toolset and the playbooks cannot tell the warehouses apart. `sdk_call` is how they,
and the usage readers over the same SDKs, make one SDK call.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from bot import metrics
from bot.errors import ConfigError, SourceError
from bot.facts import Table
from bot.settings import WarehouseSettings
from bot.tools import Check
from integrations.errors import UpstreamNotFound
from integrations.warehouse import privileges
from integrations.warehouse.guard import SYSTEM
from integrations.warehouse.names import close_names, no_such_table

logger = logging.getLogger(__name__)

CONNECTOR = "warehouse"
T = TypeVar("T")


def sdk_call(
    operation: str, run: Callable[[], T], translate: Callable[[Exception], SourceError]
) -> T:
    """`run` timed and counted as the warehouse connector's `operation`. Our own errors pass
    through; whatever the SDK raises comes out as the `SourceError` `translate` makes of it."""
    with metrics.connector_call(CONNECTOR, operation):
        try:
            return run()
        except SourceError:
            raise
        except Exception as exc:
            raise translate(exc) from exc


class RestCatalog(ABC):
    """Read-only catalog of a warehouse whose metadata API is REST (no SQL, no warehouse)."""

    system = SYSTEM
    dialect: str
    where: str  # credential-free, e.g. "bigquery project my-proj"
    schema_word = "schema"  # what the warehouse calls a schema ("dataset" on BigQuery)

    @classmethod
    @abstractmethod
    def from_url(
        cls,
        url: str,
        schemas: Sequence[str] = (),
        *,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
    ) -> Self:
        """The catalog a warehouse URL describes."""

    @classmethod
    def from_settings(cls, settings: WarehouseSettings) -> Self:
        if settings.url is None:
            raise ConfigError("PIPEBOT_WAREHOUSE__URL is not set")
        return cls.from_url(
            settings.url.get_secret_value(),
            settings.schemas,
            statement_timeout=settings.statement_timeout,
            row_cap=settings.row_cap,
        )

    def __init__(self, schemas: Sequence[str], *, statement_timeout: float, row_cap: int) -> None:
        if statement_timeout <= 0:
            raise ConfigError("warehouse statement_timeout must be positive")
        if row_cap < 1:
            raise ConfigError("warehouse row_cap must be at least 1")
        self.configured: tuple[str, ...] = tuple(dict.fromkeys(s for s in schemas if s))
        self.statement_timeout = float(statement_timeout)
        self.row_cap = row_cap

    # --- what a warehouse supplies -----------------------------------------------------

    @property
    @abstractmethod
    def last_altered_means(self) -> str: ...

    @abstractmethod
    def _list_schemas(self) -> list[str]:
        """Every schema the credentials may see, in name order."""

    @abstractmethod
    def _list_names(self, schema: str) -> list[str]:
        """The relation names of an existing `schema`, in name order (no columns)."""

    @abstractmethod
    def _describe(self, schema: str, names: Sequence[str] | None) -> list[Table]:
        """Relations of `schema` with columns: those named (in that order), or all of them.
        Asking for all may stop after `row_cap` + 1 relations."""

    @abstractmethod
    def _get(self, schema: str, name: str) -> Table | None:
        """One relation, or None when the warehouse says it does not exist."""

    @abstractmethod
    def _version(self) -> str: ...

    def _write_abilities(self, schemas: Sequence[str]) -> tuple[list[privileges.WriteAbility], str]:
        """The login's grants beyond the documented role in `schemas` (doctor), and a note on
        what could not be checked ("" when everything was)."""
        return [], ""

    @abstractmethod
    def close(self) -> None: ...

    # --- the WarehouseCatalog port -----------------------------------------------------

    def schemas(self) -> list[str]:
        found = self._list_schemas()
        if self.configured:
            present = set(found)
            return [s for s in self.configured if s in present]
        return found

    def tables(self, schema: str | None = None) -> list[Table]:
        """Every relation of `schema` (or of the configured / all visible schemas) with
        columns; at most `row_cap`, ordered by schema and name."""
        targets = self._targets(schema)
        tables: list[Table] = []
        for target in targets:
            tables.extend(self._describe(target, None))
            if len(tables) > self.row_cap:
                break
        if len(tables) > self.row_cap:
            logger.warning(
                "warehouse catalog of %s at %s has more than %d relations; "
                "listing the first %d by name (PIPEBOT_WAREHOUSE__ROW_CAP)",
                ", ".join(targets),
                self.where,
                self.row_cap,
                self.row_cap,
            )
        return tables[: self.row_cap]

    def table(self, schema: str, name: str) -> Table:
        """One relation with its columns; `NotFound` with close names as suggestions."""
        self._check_configured(schema)
        found = self._get(schema, name)
        if found is not None:
            return found
        self._targets(schema)  # a missing schema says so, rather than "no table"
        raise no_such_table(schema, name, self._list_names(schema), self.where)

    # --- doctor ------------------------------------------------------------------------

    def check(self) -> Check:
        """Reachable, authenticated, every configured schema visible, its relations listable
        and one of them describable (the grant that lets pipebot read columns) — and the login
        has no grant beyond the documented read-only role (privileges.py), naming what to
        revoke when it has."""
        try:
            found = self._list_schemas()
        except SourceError as exc:
            return self._check(ok=False, detail=exc.reason)
        problems = []
        for name in self.configured:
            if name not in found:
                close = close_names(name, found)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                problems.append(f"{self.schema_word} {name} not found or not visible{hint}")
        if problems:
            return self._check(ok=False, detail="; ".join(problems))
        described = self.configured or tuple(found)
        count = 0
        try:
            for schema in described:
                names = self._list_names(schema)
                if names and count == 0:
                    self._describe(schema, names[:1])
                count += len(names)
        except SourceError as exc:
            return self._check(ok=False, detail=exc.reason)
        try:
            abilities, unchecked = self._write_abilities(described)
        except SourceError as exc:
            return self._check(
                ok=False, detail=f"cannot check the login's privileges: {exc.reason}"
            )
        if abilities:
            return self._check(
                ok=False, detail=privileges.summary(abilities, privileges.BEYOND_ROLE)
            )
        shown = ", ".join(described[:5]) + (" …" if len(described) > 5 else "")
        capped = (
            f" (only the first {self.row_cap} are read: row cap)" if count > self.row_cap else ""
        )
        return self._check(
            ok=True,
            detail=f"read the catalog of {len(described)} {self.schema_word}(s) "
            f"({shown or 'none'}): {count} tables and views{capped}"
            + (f"; {unchecked}" if unchecked else ""),
        )

    # --- scoping -----------------------------------------------------------------------

    def _check_configured(self, schema: str) -> None:
        if self.configured and schema not in self.configured:
            raise UpstreamNotFound(
                SYSTEM,
                f"schema {schema} is not one of the configured schemas "
                f"({', '.join(self.configured)}; PIPEBOT_WAREHOUSE__SCHEMAS)",
                suggestions=close_names(schema, self.configured) or list(self.configured),
            )

    def _targets(self, schema: str | None) -> list[str]:
        if schema is not None:
            self._check_configured(schema)
        found = self._list_schemas()
        wanted = [schema] if schema is not None else list(self.configured) or found
        present = set(found)
        for name in wanted:
            if name not in present:
                suggestions = close_names(name, found)
                hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
                raise UpstreamNotFound(
                    SYSTEM,
                    f"no schema {name} in {self.where} (or the credentials may not see it){hint}",
                    suggestions=suggestions,
                )
        return wanted

    def _check(self, *, ok: bool, detail: str) -> Check:
        return Check(
            system=SYSTEM, ok=ok, detail=detail, target=self.where, version=self._version()
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where}, schemas={list(self.configured)})"


# --- URLs ----------------------------------------------------------------------------------


class ParsedUrl:
    """A warehouse URL split without SQLAlchemy: scheme, user, password, host, path parts and
    query options (each option once)."""

    def __init__(self, url: str, *, scheme: str, known: Sequence[str], example: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != scheme:
            raise ConfigError(f"not a {scheme}:// URL; expected e.g. {example}")
        self.user = unquote(parts.username) if parts.username else ""
        self.password = unquote(parts.password) if parts.password else ""
        try:
            self.host = parts.hostname or ""
            self.port = parts.port
        except ValueError:
            raise ConfigError(
                f"the {scheme}:// URL has a bad port; expected e.g. {example}"
            ) from None
        self.path = [unquote(p) for p in parts.path.split("/") if p]
        options: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in known:
                raise ConfigError(
                    f"unknown option {key!r} in the {scheme}:// URL; known: {', '.join(known)}"
                )
            options[key] = value
        self.options: Mapping[str, str] = options
