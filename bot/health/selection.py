"""Filters that narrow a health report: DAG tags, DAG owners and dbt selectors.

Typed the same way in chat, in a schedule and on the command line::

    digest 7d tag:finance owner:dana dbt:tag:finance
    digest schedule daily 09:00 Europe/Berlin tag:finance dbt:+fct_orders
    pipebot digest 7d --tag finance --owner dana --select tag:finance

Several values of one kind widen (any tag, any owner, the union of dbt selectors, as in dbt);
kinds narrow each other only where they apply: tags and owners pick DAGs, dbt selectors pick
models, their tests, sources and the tables they build.

dbt selectors supported: a node name (shell wildcards allowed, ``stg_*``), ``tag:``, ``path:``,
``package:``, ``group:``, ``source:`` (``source:shop`` or ``source:shop.orders``),
``resource_type:``, ``config.materialized:``, and the graph operators ``+name`` (with what it
reads) and ``name+`` (with what reads it).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot.facts import Dag, DbtNode, Lineage

KINDS = ("tag", "owner", "dbt")
METHODS = (
    "tag",
    "path",
    "package",
    "group",
    "source",
    "resource_type",
    "config.materialized",
    "fqn",
)


class FilterError(ValueError):
    """A filter that is not one (the message says which and what is accepted)."""


@dataclass(frozen=True, kw_only=True)
class Filters:
    tags: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    select: tuple[str, ...] = ()  # dbt selectors

    @property
    def empty(self) -> bool:
        return not (self.tags or self.owners or self.select)

    @property
    def airflow(self) -> bool:
        return bool(self.tags or self.owners)

    def text(self) -> str:
        """The filters as typed: ``tag:finance owner:dana dbt:tag:finance``."""
        return " ".join(
            [f"tag:{t}" for t in self.tags]
            + [f"owner:{o}" for o in self.owners]
            + [f"dbt:{s}" for s in self.select]
        )

    def describe(self) -> str:
        """``DAGs tagged finance, owned by dana; dbt tag:finance`` ("" without filters)."""
        parts = []
        if self.tags:
            parts.append("DAGs tagged " + " or ".join(self.tags))
        if self.owners:
            parts.append(("" if self.tags else "DAGs ") + "owned by " + " or ".join(self.owners))
        if self.select:
            parts.append("dbt " + " ".join(self.select))
        return "; ".join(parts)

    @classmethod
    def parse(cls, words: Iterable[str]) -> Filters:
        """Filters from ``tag:X``, ``owner:X`` and ``dbt:SELECTOR`` words. Raises `FilterError`
        naming the first word that is none of them."""
        tags: list[str] = []
        owners: list[str] = []
        select: list[str] = []
        for word in words:
            kind, _, value = word.partition(":")
            if not value or kind.lower() not in KINDS:
                raise FilterError(
                    f"`{word}` is not a filter: use tag:<DAG tag>, owner:<DAG owner> or "
                    "dbt:<selector> (e.g. dbt:tag:finance, dbt:+fct_orders)"
                )
            if kind.lower() == "dbt":
                check_selector(value)
            {"tag": tags, "owner": owners, "dbt": select}[kind.lower()].append(value)
        return cls(tags=tuple(tags), owners=tuple(owners), select=tuple(select))


def is_filter(word: str) -> bool:
    kind, _, value = word.partition(":")
    return bool(value) and kind.lower() in KINDS


def check_selector(selector: str) -> None:
    body = selector.strip("+")
    if not body:
        raise FilterError(f"`{selector}` is not a dbt selector")
    method, sep, value = body.partition(":")
    if sep and method not in METHODS:
        raise FilterError(
            f"`{selector}`: pipebot does not know the dbt selector method `{method}` "
            f"(it knows {', '.join(METHODS)}, and plain node names)"
        )
    if sep and not value:
        raise FilterError(f"`{selector}` selects nothing: give a value after `{method}:`")


def dag_matches(dag: Dag, filters: Filters) -> bool:
    """Whether `dag` is one the filters keep (tags and owners compared case-insensitively)."""
    if filters.tags:
        wanted = {t.lower() for t in filters.tags}
        if not wanted & {t.lower() for t in dag.tags}:
            return False
    if filters.owners:
        wanted = {o.lower().lstrip("@") for o in filters.owners}
        if not wanted & {o.lower().lstrip("@") for o in dag.owners}:
            return False
    return True


def select_nodes(
    nodes: Sequence[DbtNode],
    selectors: Sequence[str],
    lineage: Callable[[str], Lineage] | None = None,
) -> set[str]:
    """Unique ids of `nodes` the selectors pick (their union), with the tests on the picked
    models and sources (dbt's eager indirect selection). `lineage` resolves ``+`` operators."""
    picked: set[str] = set()
    for selector in selectors:
        parents, children = selector.startswith("+"), selector.endswith("+")
        body = selector.strip("+")
        matched = {n.unique_id for n in nodes if _matches(n, body)}
        picked |= matched
        if (parents or children) and lineage is not None:
            for uid in matched:
                graph = lineage(uid)
                if parents:
                    picked |= {n.unique_id for n in graph.upstream}
                if children:
                    picked |= {n.unique_id for n in graph.downstream}
    picked |= {n.unique_id for n in nodes if n.resource_type == "test" and n.tested in picked}
    return picked


def _matches(node: DbtNode, selector: str) -> bool:
    method, sep, value = selector.partition(":")
    if not sep:
        method, value = "fqn", selector
    value_l = value.lower()
    if method == "tag":
        return any(fnmatch.fnmatchcase(t.lower(), value_l) for t in node.tags)
    if method == "path":
        path = node.path.lower()
        return path.startswith(value_l.rstrip("/")) or fnmatch.fnmatchcase(path, value_l)
    if method == "package":
        return node.package.lower() == value_l
    if method == "group":
        return node.group.lower() == value_l
    if method == "resource_type":
        return node.resource_type == value_l
    if method == "config.materialized":
        return node.materialized.lower() == value_l
    if method == "source":
        if node.resource_type != "source":
            return False
        parts = node.unique_id.split(".")  # source.<package>.<source>.<table>
        source, table = (parts[2], parts[3]) if len(parts) >= 4 else ("", node.name)
        want_source, _, want_table = value_l.partition(".")
        return fnmatch.fnmatchcase(source.lower(), want_source) and (
            not want_table or fnmatch.fnmatchcase(table.lower(), want_table)
        )
    # fqn / a bare name: the node's name, or its dotted path in the project
    return fnmatch.fnmatchcase(node.name.lower(), value_l) or node.unique_id.lower().endswith(
        "." + value_l
    )
