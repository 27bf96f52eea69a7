"""Names a person mistyped: the close ones to suggest, and the "no such table" every catalog
raises with them (SQL and REST catalogs alike)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from integrations.errors import UpstreamNotFound
from integrations.warehouse.guard import SYSTEM


def close_names(name: str, candidates: Sequence[str]) -> list[str]:
    """Up to five candidates close to `name`, same-name-other-case first."""
    by_case = [c for c in candidates if c.lower() == name.lower() and c != name]
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in candidates], n=5)
    lowered = {c.lower(): c for c in candidates}
    return list(dict.fromkeys(by_case + [lowered[c] for c in close if lowered[c] != name]))[:5]


def no_such_table(schema: str, name: str, names: Sequence[str], where: str) -> UpstreamNotFound:
    """`schema.name` is not among `names` (the schema's relations) in `where`."""
    suggestions = close_names(name, names)
    hint = f"; did you mean {', '.join(f'{schema}.{s}' for s in suggestions)}?"
    return UpstreamNotFound(
        SYSTEM,
        f"no table or view {schema}.{name} in {where}" + (hint if suggestions else ""),
        suggestions=[f"{schema}.{s}" for s in suggestions],
    )
