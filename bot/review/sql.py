"""What a model's SQL reads of its parents, and what each of its columns is made from.

The lineage maps of a manifest only say *that* a model reads another; a schema review needs
*which columns*: a dropped column breaks the models that select it, not every model downstream.
So the SQL (`StateNode.sql`) is parsed with sqlglot and qualified against the parents' columns
(which also expands ``select *``), then every column reference is resolved to the parent table
it comes from, through CTEs, subqueries and unions::

    reading = read_sql(sql, dialect="duckdb", parents=[Parent("model.shop.stg_orders",
                       '"shop"."staging"."stg_orders"', ("order_id", "amount"))])
    reading.reads["model.shop.stg_orders"]    # {'order_id', 'amount'}: anywhere in the query
    reading.derives["amount"]                 # {('model.shop.stg_orders', 'amount')}

A reference that cannot be pinned to one parent (an unqualified name with several candidate
tables, a ``*`` over a parent whose columns are unknown, SQL that does not parse) lands in
`Reading.maybe` / `Reading.maybe_all` — never dropped: unknown is not "does not read".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, build_scope

from bot.facts import DbtState

# Where a column comes from: (the parent's unique id, the column, lower-cased).
Origin = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Parent:
    """A relation the SQL may read: its unique id, warehouse name and known columns."""

    unique_id: str
    relation: str
    columns: Sequence[str] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """The columns one query reads and derives, keyed by the parents' unique ids; column names
    lower-cased."""

    reads: dict[str, set[str]] = field(default_factory=dict)  # for certain, anywhere
    maybe: dict[str, set[str]] = field(default_factory=dict)  # perhaps (unqualified names)
    maybe_all: frozenset[str] = frozenset()  # parents any column of which it may read
    # Output column → the parent columns it is computed from.
    derives: dict[str, set[Origin]] = field(default_factory=dict)
    # Output column → the column it passes on, as written (``order_date`` for ``order_date as
    # ordered_on``); only outputs that are a bare column.
    expressions: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # why the SQL could not be read (then every parent is in maybe_all)

    def reads_column(self, parent: str, column: str) -> str:
        """ "sure", "maybe" or "" — whether the query reads `column` of `parent`."""
        name = column.lower()
        if name in self.reads.get(parent, ()):
            return "sure"
        if parent in self.maybe_all or name in self.maybe.get(parent, ()):
            return "maybe"
        return ""

    def derived_from(self, parent: str, column: str) -> list[str]:
        """The output columns computed from `column` of `parent`."""
        origin = (parent, column.lower())
        return [out for out, origins in self.derives.items() if origin in origins]


def unreadable(parents: Iterable[str], problem: str) -> Reading:
    return Reading(maybe_all=frozenset(parents), problem=problem)


def read_sql(sql: str, *, dialect: str | None, parents: Sequence[Parent]) -> Reading:
    """The `Reading` of a model's SQL against its `parents`."""
    ids = [p.unique_id for p in parents]
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=dialect or None) if s is not None]
    except SqlglotError as exc:
        return unreadable(ids, f"its SQL could not be parsed ({first_error(exc)})")
    # A model is one query; hooks or `set` statements may precede it.
    query = next((s for s in reversed(statements) if isinstance(s, exp.Query)), None)
    if query is None:
        return unreadable(ids, "its SQL has no SELECT")
    keyed = [(p, key) for p in parents if (key := relation_key(p.relation, dialect)) is not None]
    expressions = _expressions(query)
    try:
        # Names are compared as the warehouse would: unquoted identifiers folded to its case.
        root = build_scope(normalize_identifiers(query, dialect=dialect or None))
    except SqlglotError as exc:
        return unreadable(ids, f"its SQL could not be resolved ({first_error(exc)})")
    if root is None:
        return unreadable(ids, "its SQL could not be resolved")
    resolver = _Resolver(keyed)
    for scope in root.traverse():
        resolver.scan(scope)
    derives = dict(resolver.outputs(root))
    return Reading(
        reads=resolver.reads,
        maybe=resolver.maybe,
        maybe_all=frozenset(resolver.maybe_all),
        derives=derives,
        expressions=expressions,
    )


@functools.lru_cache(maxsize=65_536)
def relation_key(relation: str, dialect: str | None) -> tuple[str, str, str] | None:
    """(catalog, db, name) of a relation name, lower-cased; None when it does not parse.
    Cached: every reader names its parents, and parsing a name costs a third of a query."""
    try:
        table = exp.to_table(relation, dialect=dialect or None)
    except SqlglotError:
        return None
    if not table.name:
        return None
    return (table.catalog.lower(), table.db.lower(), table.name.lower())


def first_error(exc: SqlglotError) -> str:
    """The parser's own description, without the highlighted SQL (terminal escapes) that its
    message carries."""
    errors = getattr(exc, "errors", None)
    if errors and isinstance(errors[0], dict) and errors[0].get("description"):
        first = errors[0]
        where = f" at line {first['line']}" if first.get("line") else ""
        return f"{first['description']}{where}"
    return type(exc).__name__


def _expressions(query: exp.Query) -> dict[str, str]:
    """Output column → the column it passes on, as written (``order_date`` for ``order_date
    as ordered_on``, ``o.order_date`` when qualified), for the first branch of a union;
    outputs computed by anything else than a bare column are left out. Read before
    qualification, which rewrites what the author wrote."""
    select = query
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return {}
    out: dict[str, str] = {}
    for projection in select.expressions:
        body = projection.this if isinstance(projection, exp.Alias) else projection
        if not isinstance(body, exp.Column) or isinstance(body.this, exp.Star):
            continue
        name = projection.alias_or_name
        if name:
            written = f"{body.table}.{body.name}" if body.table else body.name
            out.setdefault(name.lower(), written)
    return out


# Where a name of a scope leads: a parent table (its unique id), another scope (a CTE or
# subquery), or something else (a table that is no parent, a function).
_Source = tuple[str, "str | Scope | None"]


class _Resolver:
    """Walks the scopes of one query, resolving each column to the parent table it comes
    from, through CTEs, subqueries and unions — what `qualify` would do, at a quarter of its
    cost, which matters when a review parses hundreds of readers."""

    def __init__(self, keyed: Sequence[tuple[Parent, tuple[str, str, str]]]) -> None:
        self._keyed = keyed
        self._known = {p.unique_id: {c.lower() for c in p.columns} for p, _ in keyed}
        self.reads: dict[str, set[str]] = {}
        self.maybe: dict[str, set[str]] = {}
        self.maybe_all: set[str] = set()
        self._outputs: dict[int, list[tuple[str, set[Origin]]]] = {}
        self._sources_of: dict[int, dict[str, _Source]] = {}

    def parent_of(self, table: exp.Table) -> str | None:
        mine = (table.catalog.lower(), table.db.lower(), table.name.lower())
        for parent, key in self._keyed:
            # Same name, and same schema and database wherever both sides give them.
            if mine[2] == key[2] and all(
                not a or not b or a == b for a, b in zip(mine[:2], key[:2], strict=True)
            ):
                return parent.unique_id
        return None

    def sources(self, scope: Scope) -> dict[str, _Source]:
        """Alias → where it leads, for what the scope selects from (FROM and JOINs)."""
        cached = self._sources_of.get(id(scope))
        if cached is not None:
            return cached
        found: dict[str, _Source] = {}
        for alias, (_, source) in scope.selected_sources.items():
            if isinstance(source, exp.Table):
                parent = self.parent_of(source)
                found[alias] = ("table", parent) if parent else ("other", None)
            elif isinstance(source, Scope):
                found[alias] = ("scope", source)
            else:
                found[alias] = ("other", None)
        self._sources_of[id(scope)] = found
        return found

    def columns_of(self, source: _Source) -> set[str] | None:
        """The column names a source has (None: unknown)."""
        kind, target = source
        if kind == "table" and isinstance(target, str):
            return self._known.get(target) or None
        if kind == "scope" and isinstance(target, Scope):
            return {name for name, _ in self.outputs(target)} or None
        return None

    def locate(self, scope: Scope, column: exp.Column) -> list[tuple[_Source, str]]:
        """The sources a column reference may come from, each "sure" or "maybe"."""
        sources = self.sources(scope)
        if column.table:
            found = sources.get(column.table)
            return [(found, "sure")] if found is not None else []
        name = column.name.lower()
        have: list[_Source] = []
        unknown: list[_Source] = []
        for source in sources.values():
            names = self.columns_of(source)
            if names is None:
                unknown.append(source)
            elif name in names:
                have.append(source)
        if len(have) == 1 and not unknown:
            return [(have[0], "sure")]
        if not have and len(unknown) == 1 and len(sources) == 1:
            # The only table of the query, its columns unknown: the name is its column.
            return [(unknown[0], "sure")]
        # Several candidates, or a select alias: any of them may be meant.
        return [(source, "maybe") for source in (*have, *unknown)]

    def _read(self, source: _Source, name: str, how: str) -> None:
        kind, target = source
        if kind != "table" or not isinstance(target, str):
            return  # a CTE or subquery: its own scope records what it reads
        (self.reads if how == "sure" else self.maybe).setdefault(target, set()).add(name)

    def _read_all(self, source: _Source) -> None:
        """A star over `source`: every column it has is passed on."""
        kind, target = source
        if kind != "table" or not isinstance(target, str):
            return
        known = self._known.get(target)
        if known:
            self.reads.setdefault(target, set()).update(known)
        else:
            self.maybe_all.add(target)

    def scan(self, scope: Scope) -> None:
        sources = self.sources(scope)
        if not any(kind == "table" for kind, _ in sources.values()):
            return
        for column in scope.columns:
            if isinstance(column.this, exp.Star):
                continue
            name = column.name.lower()
            if name:
                for source, how in self.locate(scope, column):
                    self._read(source, name, how)
        expression = scope.expression
        if not isinstance(expression, exp.Select):
            return
        # `join … using (k)` reads k on both sides, without a column reference.
        for join in expression.args.get("joins") or ():
            for identifier in join.args.get("using") or ():
                name = identifier.name.lower()
                for source in sources.values():
                    names = self.columns_of(source)
                    if names is None or name in names:
                        self._read(source, name, "sure" if names else "maybe")
        for projection in expression.expressions:
            if isinstance(projection, exp.Star):
                for source in sources.values():
                    self._read_all(source)
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                found = sources.get(projection.table)
                if found is not None:
                    self._read_all(found)

    def outputs(self, scope: Scope) -> list[tuple[str, set[Origin]]]:
        """(name, origins) of each column the scope returns, in order."""
        cached = self._outputs.get(id(scope))
        if cached is not None:
            return cached
        self._outputs[id(scope)] = []  # a recursive CTE refers to itself: stop there
        found: list[tuple[str, set[Origin]]] = []
        expression = scope.expression
        if isinstance(expression, exp.SetOperation) and len(scope.set_operation_scopes) == 2:
            left, right = (self.outputs(s) for s in scope.set_operation_scopes)
            # A union's columns are named by its first branch and fed by every branch, by
            # position.
            for index, (name, origins) in enumerate(left):
                more = right[index][1] if index < len(right) else set()
                found.append((name, origins | more))
        elif isinstance(expression, exp.Select):
            sources = self.sources(scope)
            for projection in expression.selects:
                if isinstance(projection, exp.Star):
                    for source in sources.values():
                        found.extend(self._star(source))
                elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                    named = sources.get(projection.table)
                    if named is not None:
                        found.extend(self._star(named))
                else:
                    name = projection.alias_or_name.lower()
                    if name:
                        found.append((name, self._origins(scope, projection)))
        self._outputs[id(scope)] = found
        return found

    def _star(self, source: _Source) -> list[tuple[str, set[Origin]]]:
        kind, target = source
        if kind == "table" and isinstance(target, str):
            return [(name, {(target, name)}) for name in sorted(self._known.get(target, ()))]
        if kind == "scope" and isinstance(target, Scope):
            return [(name, set(origins)) for name, origins in self.outputs(target)]
        return []

    def _origins(self, scope: Scope, node: exp.Expr) -> set[Origin]:
        origins: set[Origin] = set()
        here = scope.expression
        for column in node.find_all(exp.Column):
            name = column.name.lower()
            # Columns of a subquery inside the expression belong to its own scope.
            if not name or column.find_ancestor(exp.Select) is not here:
                continue
            for (kind, target), _ in self.locate(scope, column):
                if kind == "table" and isinstance(target, str):
                    origins.add((target, name))
                elif kind == "scope" and isinstance(target, Scope):
                    for out, inner in self.outputs(target):
                        if out == name:
                            origins |= inner
        return origins


class Readings:
    """The `Reading` of each model, snapshot and singular test of a state, parsed on first use
    and kept (a review parses only the readers of what changed, not the whole project).

    A parent's columns are those of `state` and of `also` (the other state): a reader of a
    removed column is qualified against the column it still names.
    """

    def __init__(self, state: DbtState, *, also: DbtState | None = None) -> None:
        self.state = state
        self._also = also
        self._cache: dict[str, Reading] = {}
        self.parsed = 0  # queries parsed so far (the benchmark prints it)

    def columns_of(self, unique_id: str) -> list[str]:
        names: dict[str, None] = {}
        for state in (self.state, self._also):
            node = state.nodes.get(unique_id) if state is not None else None
            if node is not None:
                names.update((c.name.lower(), None) for c in node.columns)
        return list(names)

    def may_read(self, unique_id: str, column: str) -> bool:
        """False when the node's SQL cannot read `column`: the name appears nowhere in it and
        it selects no ``*`` — decided without parsing, which most readers of a column spared
        by a change never need."""
        node = self.state.nodes.get(unique_id)
        if node is None or not node.sql or node.sql_partial:
            return True
        text = node.sql.lower()
        return column.lower() in text or "*" in text

    def of(self, unique_id: str) -> Reading:
        cached = self._cache.get(unique_id)
        if cached is not None:
            return cached
        node = self.state.nodes.get(unique_id)
        test = self.state.tests.get(unique_id) if node is None else None
        if node is not None:
            reading = self._read(node.sql, node.parents, partial=node.sql_partial)
        elif test is not None:
            reading = self._read(test.sql, test.parents, partial=False)
        else:
            reading = unreadable((), "not in the manifest")
        self._cache[unique_id] = reading
        return reading

    def _read(self, sql: str, parent_ids: Sequence[str], *, partial: bool) -> Reading:
        nodes = self.state.nodes
        parents = [
            Parent(p, nodes[p].relation, self.columns_of(p))
            for p in parent_ids
            if p in nodes and nodes[p].relation
        ]
        if not sql.strip():
            return unreadable(parent_ids, "the manifest has no SQL for it")
        self.parsed += 1
        reading = read_sql(sql, dialect=self.state.dialect or None, parents=parents)
        if partial:
            # Jinja pipebot does not render (a macro call) may produce any column list.
            return Reading(
                reads=reading.reads,
                maybe=reading.maybe,
                maybe_all=frozenset(parent_ids),
                derives=reading.derives,
                expressions=reading.expressions,
                problem="its raw SQL calls macros pipebot does not render",
            )
        return reading
