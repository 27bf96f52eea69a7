"""Which columns of a node the models reading it select, from their SQL.

A column dropped from a model breaks every model that selects it at its next build, whether or
not the YAML declares the column; the lineage maps only say *that* a model reads the node, not
*what* it reads. So the SQL of each model directly downstream is parsed with sqlglot and its
column references are resolved to tables (`qualify`, with the parents' columns as the schema,
which also expands ``select *``):

- the manifest's ``compiled_code`` when it has it (after ``dbt build``, ``compile`` or ``docs
  generate``; a ``dbt run -s`` leaves it only on the selected models), else
- ``raw_code`` with ``ref()``/``source()`` replaced by the relations they name and the rest of
  the Jinja removed — good for the plain SQL most models are; a reference inside a macro call
  cannot be seen, so such a model is reported as "may select" rather than "does not".

A reference that cannot be pinned to one table (unqualified, with a parent whose columns are
unknown) is reported as "may select", never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from bot.facts import ColumnUse
from bot.review.sql import first_error

if TYPE_CHECKING:
    from integrations.dbt._view import ManifestIndex

# dbt adapter type → sqlglot dialect (adapters not listed are parsed with sqlglot's default).
DIALECTS = {
    "athena": "athena",
    "bigquery": "bigquery",
    "clickhouse": "clickhouse",
    "databricks": "databricks",
    "duckdb": "duckdb",
    "fabric": "tsql",
    "postgres": "postgres",
    "redshift": "redshift",
    "snowflake": "snowflake",
    "spark": "spark",
    "sqlserver": "tsql",
    "trino": "trino",
}
# Resource types whose SQL builds a relation from their parents.
READERS = ("model.", "snapshot.")
_PLACEHOLDER = "pipebot_jinja"
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_JINJA_STATEMENT = re.compile(r"\{%-?.*?-?%\}", re.S)
_JINJA_EXPRESSION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
_STRING_ARGS = re.compile(r"""['"]([^'"]+)['"]""")
_CALL = re.compile(r"\s*(ref|source|config)\s*\(", re.S)


def dialect_of(adapter_type: str | None) -> str | None:
    return DIALECTS.get((adapter_type or "").lower())


def render_raw(raw: str, refs: dict[str, str], sources: dict[tuple[str, str], str]) -> str:
    """`raw` (a model's Jinja SQL) as plain SQL: ``ref('x')`` → the relation of ``x``,
    ``source('s', 't')`` → the relation of that source, ``config(…)`` and Jinja statements and
    comments dropped, any other expression → a placeholder identifier."""

    def expression(match: re.Match[str]) -> str:
        body = match.group(1)
        call = _CALL.match(body)
        if call is None:
            return _PLACEHOLDER
        kind = call.group(1)
        args = _STRING_ARGS.findall(body)
        if kind == "config":
            return ""
        if kind == "ref" and args:
            # ref('pkg', 'name') or ref('name', v=2): the model's name is the last string
            # before any keyword argument (versions are keywords, not strings).
            name = args[1] if len(args) >= 2 and "," in body.split(args[1])[0] else args[0]
            return refs.get(name.lower(), _PLACEHOLDER)
        if kind == "source" and len(args) >= 2:
            return sources.get((args[0].lower(), args[1].lower()), _PLACEHOLDER)
        return _PLACEHOLDER

    text = _JINJA_COMMENT.sub("", raw)
    text = _JINJA_STATEMENT.sub("", text)
    return _JINJA_EXPRESSION.sub(expression, text)


def _key(relation: str, dialect: str | None) -> tuple[str, ...] | None:
    """(catalog, db, name) of a relation name, lower-cased; None when it does not parse."""
    try:
        table = exp.to_table(relation, dialect=dialect)
    except (ParseError, SqlglotError):
        return None
    if not table.name:
        return None
    return tuple(part.lower() for part in (table.catalog, table.db, table.name))


def _same_table(table: exp.Table, key: tuple[str, ...]) -> bool:
    """A table in the SQL is the relation `key` names: same name, and same schema and
    database wherever both sides give them."""
    mine = (table.catalog.lower(), table.db.lower(), table.name.lower())
    if mine[2] != key[2]:
        return False
    return all(not a or not b or a == b for a, b in zip(mine[:2], key[:2], strict=True))


def _schema(parents: Iterable[tuple[str, Sequence[str]]], dialect: str | None) -> dict[str, object]:
    """The nested mapping `qualify` takes ({catalog: {db: {table: {column: type}}}}, every
    table at the same depth); only names matter to it, so every type is text."""
    tables: list[tuple[tuple[str, ...], Sequence[str]]] = []
    for relation, columns in parents:
        key = _key(relation, dialect)
        if key is not None and columns:
            tables.append((key, columns))
    # Use the parts every relation has (dbt writes them all alike; mixed depths are trimmed).
    if all(key[0] for key, _ in tables):
        start = 0
    elif all(key[1] for key, _ in tables):
        start = 1
    else:
        start = 2
    schema: dict[str, object] = {}
    for key, columns in tables:
        level: dict[str, object] = schema
        for part in key[start:2]:
            level = level.setdefault(part, {})  # type: ignore[assignment]
        level[key[2]] = {column.lower(): "text" for column in columns}
    return schema


def selected(
    sql: str,
    *,
    relation: str,
    columns: Sequence[str],
    parents: Sequence[tuple[str, Sequence[str]]],
    dialect: str | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Which of `columns` of `relation` the query `sql` selects for certain, and which it may
    select. Raises `SqlglotError` when the SQL does not parse."""
    key = _key(relation, dialect)
    wanted = {c.lower(): c for c in columns}
    if key is None or not wanted:
        return (), tuple(columns)
    statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    sure: set[str] = set()
    maybe: set[str] = set()
    schema = _schema(parents, dialect)
    for statement in statements:
        # Named references first; then with every `*` expanded, which adds the columns a
        # model selects only through a star (it passes them on, or reads them from a CTE).
        for expand in (False, True):
            found: set[str] = set()
            try:
                tree = qualify(
                    statement.copy(),
                    schema=schema or None,
                    dialect=dialect,
                    expand_stars=expand,
                    validate_qualify_columns=False,
                    quote_identifiers=False,
                    identify=False,
                )
            except SqlglotError:
                # Ambiguous or unresolvable references: fall back to the names as written.
                tree = statement.copy()
            for scope in traverse_scope(tree):
                _scan(scope, key, wanted, found, maybe, stars=not expand)
            (maybe if expand else sure).update(found)
    ordered = list(columns)
    return (
        tuple(c for c in ordered if c.lower() in sure),
        tuple(c for c in ordered if c.lower() in maybe and c.lower() not in sure),
    )


def _scan(
    scope: Scope,
    key: tuple[str, ...],
    wanted: dict[str, str],
    found: set[str],
    maybe: set[str],
    *,
    stars: bool,
) -> None:
    aliases = {
        alias
        for alias, source in scope.sources.items()
        if isinstance(source, exp.Table) and _same_table(source, key)
    }
    if not aliases:
        return
    for column in scope.columns:
        name = column.name.lower()
        if name not in wanted:
            continue
        if column.table in aliases:
            found.add(name)
        elif not column.table:
            maybe.add(name)
    # A star in the projection over the relation passes every column on; `count(*)` and the
    # like select none, so only projections count.
    select = scope.expression
    if not stars or not isinstance(select, exp.Select):
        return
    for projection in select.expressions:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column)
            and isinstance(projection.this, exp.Star)
            and projection.table in aliases
        ):
            maybe.update(wanted)


def column_uses(index: ManifestIndex, unique_id: str, columns: Sequence[str]) -> list[ColumnUse]:
    """For each model or snapshot reading `unique_id` directly, which of `columns` its SQL
    selects (for certain, or maybe)."""
    relation = index.relation_of(unique_id)
    dialect = dialect_of(index.metadata.adapter_type)
    out: list[ColumnUse] = []
    if not columns:
        return out
    for child in index.children.get(unique_id, ()):
        if not child.startswith(READERS):
            continue
        fact = index.brief(child)
        kind, code = index.code_of(child)
        parents = index.parents.get(child, ())
        if kind == "raw":
            refs = {index.brief(p).name.lower(): index.relation_of(p) for p in parents}
            sources: dict[tuple[str, str], str] = {}
            for p in parents:
                names = index.source_names(p)
                if names is not None:
                    sources[(names[0].lower(), names[1].lower())] = index.relation_of(p)
            code = render_raw(code, refs, sources)
        if not code.strip() or not relation:
            out.append(
                ColumnUse(
                    reader=fact,
                    maybe=tuple(columns),
                    problem="the manifest has no SQL for it" if relation else "",
                )
            )
            continue
        known = [(index.relation_of(p), index.column_names(p)) for p in parents]
        # The reviewed node's columns as they were (the dropped ones included).
        known.append((relation, [*index.column_names(unique_id), *columns]))
        try:
            sure, maybe = selected(
                code, relation=relation, columns=columns, parents=known, dialect=dialect
            )
        except SqlglotError as exc:
            out.append(
                ColumnUse(
                    reader=fact,
                    maybe=tuple(columns),
                    code=kind,
                    problem=f"its {kind} SQL could not be parsed ({first_error(exc)})",
                )
            )
            continue
        if kind == "raw" and _PLACEHOLDER in code:
            # Jinja pipebot does not render (a macro call) may produce any column list.
            maybe = tuple(c for c in columns if c not in sure)
        out.append(ColumnUse(reader=fact, columns=sure, maybe=maybe, code=kind))
    return out
