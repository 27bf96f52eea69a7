"""Personal data in tool results: mask the values of configured columns before the model sees them.

The redactor works on text; this works on the structure a tool returned, where a column name
tells us a value is personal even when it looks harmless ("Dana", "+44 20 …")::

    mask_columns({"rows": [{"id": 1, "email": "a@b.c"}]}, {"email"})
    # → {"rows": [{"id": 1, "email": "[PII]"}]}

Two shapes are recognised: objects whose keys are column names, and ``{"columns": [...],
"rows": [[...], ...]}`` tables where the column list names the positions to mask. Matching is
case-insensitive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["PII_MASK", "mask_columns"]

PII_MASK = "[PII]"


def mask_columns(data: Any, columns: Iterable[str]) -> Any:
    """A copy of `data` with the values of `columns` replaced by ``[PII]``."""
    wanted = {c.lower() for c in columns if c}
    if not wanted:
        return data
    return _mask(data, wanted)


def _column_name(column: Any) -> str:
    if isinstance(column, dict):
        return str(column.get("name", "")).lower()
    return str(column).lower()


def _mask(data: Any, wanted: set[str]) -> Any:
    if isinstance(data, dict):
        masked = {
            key: PII_MASK
            if str(key).lower() in wanted and value is not None
            else _mask(value, wanted)
            for key, value in data.items()
        }
        columns, rows = data.get("columns"), data.get("rows")
        if isinstance(columns, list) and isinstance(rows, list):
            positions = {i for i, c in enumerate(columns) if _column_name(c) in wanted}
            if positions:
                masked["rows"] = [
                    [PII_MASK if i in positions and v is not None else v for i, v in enumerate(r)]
                    if isinstance(r, list)
                    else _mask(r, wanted)
                    for r in rows
                ]
        return masked
    if isinstance(data, list):
        return [_mask(item, wanted) for item in data]
    return data
