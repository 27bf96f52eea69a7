"""``--select`` for the schema review: dbt's node selection syntax, the common part of it.

Selectors are separated by spaces (union); a comma joins selectors every node must match
(intersection). Each selector is a name (shell wildcards allowed) or ``method:value``, with
dbt's graph operators: ``+x`` adds everything upstream of x, ``x+`` everything downstream,
``2+x`` / ``x+1`` only that many steps::

    select("stg_orders+ tag:finance,config.materialized:table", [base, target])

Methods: ``tag``, ``path`` (file path prefix or wildcard), ``package``, ``resource_type``,
``source`` (``source:raw`` or ``source:raw.orders``), ``group``, ``access``,
``config.materialized``, ``fqn`` (as a name). Nodes are looked up in both states, so a model
the change removed can still be selected.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence

from bot.facts import DbtState, StateNode

METHODS = (
    "tag",
    "path",
    "package",
    "resource_type",
    "source",
    "group",
    "access",
    "config.materialized",
    "fqn",
)
_ATOM = re.compile(r"^(?:(\d*)\+)?(.+?)(?:\+(\d*))?$")


class SelectorError(ValueError):
    """A --select the review cannot read (the message says what is wrong)."""


def select(expression: str, states: Sequence[DbtState]) -> frozenset[str]:
    """The unique ids of the models, seeds, snapshots and sources `expression` selects."""
    nodes: dict[str, StateNode] = {}
    parents: dict[str, set[str]] = {}
    for state in states:
        for uid, node in state.nodes.items():
            nodes.setdefault(uid, node)
            parents.setdefault(uid, set()).update(p for p in node.parents if p in state.nodes)
    children: dict[str, set[str]] = {}
    for uid, ups in parents.items():
        for parent in ups:
            children.setdefault(parent, set()).add(uid)
    chosen: set[str] = set()
    for term in expression.split():
        matched: set[str] | None = None
        for atom in term.split(","):
            if not atom:
                continue
            found = _atom(atom, nodes, parents, children)
            matched = found if matched is None else matched & found
        chosen |= matched or set()
    return frozenset(chosen)


def _atom(
    atom: str,
    nodes: dict[str, StateNode],
    parents: dict[str, set[str]],
    children: dict[str, set[str]],
) -> set[str]:
    match = _ATOM.match(atom)
    if match is None:
        raise SelectorError(f"cannot read the selector {atom!r}")
    up, body, down = match.groups()
    test = _predicate(body)
    found = {uid for uid, node in nodes.items() if test(node)}
    result = set(found)
    if up is not None:
        result |= _walk(found, parents, int(up) if up else None)
    if down is not None:
        result |= _walk(found, children, int(down) if down else None)
    return result


def _walk(start: set[str], edges: dict[str, set[str]], depth: int | None) -> set[str]:
    seen = set(start)
    frontier = set(start)
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        frontier = {n for uid in frontier for n in edges.get(uid, ()) if n not in seen}
        seen |= frontier
    return seen - start


def _predicate(body: str) -> Callable[[StateNode], bool]:
    method, sep, value = body.partition(":")
    if not sep:
        method, value = "", body
    method = method.lower()
    wanted = value.lower()
    if not wanted:
        raise SelectorError(f"the selector {body!r} has no value after the colon")
    if method in ("", "fqn"):
        if "/" in wanted:
            return lambda n: _path(n.path, wanted)
        return lambda n: (
            fnmatch.fnmatchcase(n.name.lower(), wanted)
            or fnmatch.fnmatchcase(n.unique_id.lower(), wanted)
        )
    if method == "tag":
        return lambda n: any(fnmatch.fnmatchcase(t.lower(), wanted) for t in n.tags)
    if method == "path":
        return lambda n: _path(n.path, wanted)
    if method == "package":
        return lambda n: fnmatch.fnmatchcase(n.package.lower(), wanted)
    if method == "resource_type":
        return lambda n: n.resource_type == wanted
    if method == "source":
        return lambda n: (
            n.resource_type == "source"
            and (
                fnmatch.fnmatchcase(n.name.lower(), wanted)
                or fnmatch.fnmatchcase(n.name.lower().split(".", 1)[0], wanted)
            )
        )
    if method == "group":
        return lambda n: n.group.lower() == wanted
    if method == "access":
        return lambda n: (n.access or "protected") == wanted
    if method == "config.materialized":
        return lambda n: n.materialized.lower() == wanted
    raise SelectorError(
        f"pipebot does not know the selector method `{method}:` — use a name or one of "
        + ", ".join(f"`{m}:`" for m in METHODS)
    )


def _path(path: str, wanted: str) -> bool:
    lowered = path.lower()
    if any(ch in wanted for ch in "*?["):
        return fnmatch.fnmatchcase(lowered, wanted)
    return lowered == wanted or lowered.startswith(wanted.rstrip("/") + "/")
