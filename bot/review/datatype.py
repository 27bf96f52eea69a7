"""Whether a column's new type holds every value of its old one: widening, narrowing or a
change of kind.

Types are compared as the warehouse names them (catalog.json) or as the YAML declares them,
parsed with sqlglot so that ``int``/``INTEGER``/``int4`` are one type::

    shift("DECIMAL(18,2)", "DECIMAL(10,2)")   # Shift.NARROWING
    shift("INTEGER", "BIGINT")                # Shift.WIDENING
    shift("TIMESTAMP", "VARCHAR")             # Shift.CHANGED — another kind of value
    shift("varchar", "VARCHAR(256)")          # Shift.SAME — no size is any size

Within a family (integers, decimals, floats, strings, times) a larger size is a widening; an
integer into a decimal or float wide enough for it is a widening too; anything else that
differs is a change of kind, which consumers feel like a narrowing (casts, comparisons and
arithmetic behave differently).
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum

from sqlglot import exp
from sqlglot.errors import SqlglotError


class Shift(StrEnum):
    SAME = "same"
    WIDENING = "widening"
    NARROWING = "narrowing"
    CHANGED = "changed"  # another kind of value (timestamp → varchar)


_T = exp.DataType.Type
# Integer types by width in bits.
_INTEGERS = {
    _T.TINYINT: 8,
    _T.UTINYINT: 8,
    _T.SMALLINT: 16,
    _T.USMALLINT: 16,
    _T.MEDIUMINT: 24,
    _T.INT: 32,
    _T.UINT: 32,
    _T.BIGINT: 64,
    _T.UBIGINT: 64,
    _T.INT128: 128,
    _T.UINT128: 128,
    _T.INT256: 256,
}
# Decimal digits an integer of that many bits needs.
_DIGITS = {8: 3, 16: 5, 24: 8, 32: 10, 64: 19, 128: 39, 256: 77}
_FLOATS = {_T.FLOAT: 32, _T.DOUBLE: 64}
_DECIMALS = {_T.DECIMAL, _T.BIGDECIMAL, _T.MONEY, _T.SMALLMONEY, _T.UDECIMAL}
_STRINGS = {
    _T.CHAR,
    _T.NCHAR,
    _T.VARCHAR,
    _T.NVARCHAR,
    _T.TEXT,
    _T.NAME,
    _T.MEDIUMTEXT,
    _T.LONGTEXT,
    _T.TINYTEXT,
}
# Time types: a date fits in a timestamp, a timestamp in one with a time zone.
_TIMES = {
    _T.DATE: 1,
    _T.DATETIME: 2,
    _T.TIMESTAMP: 2,
    _T.TIMESTAMPNTZ: 2,
    _T.TIMESTAMPLTZ: 3,
    _T.TIMESTAMPTZ: 3,
}
_UNBOUNDED = 1 << 62


def shift(old: str, new: str, dialect: str | None = None) -> Shift:
    """How `new` relates to `old` (empty types compare as unknown: `Shift.SAME`)."""
    if not old or not new or old == new:
        return Shift.SAME
    left, right = _parse(old, dialect), _parse(new, dialect)
    if left is None or right is None:
        return Shift.SAME if _plain(old) == _plain(new) else Shift.CHANGED
    if left == right:
        return Shift.SAME
    a, b = left.this, right.this
    if a in _INTEGERS and b in _INTEGERS:
        return _compare(_INTEGERS[a], _INTEGERS[b])
    if a in _FLOATS and b in _FLOATS:
        return _compare(_FLOATS[a], _FLOATS[b])
    if a in _DECIMALS and b in _DECIMALS:
        return _decimal_shift(_decimal(left), _decimal(right))
    if a in _INTEGERS and b in _DECIMALS:
        precision, scale = _decimal(right)
        if precision is None:
            return Shift.WIDENING
        return Shift.WIDENING if precision - scale >= _DIGITS[_INTEGERS[a]] else Shift.NARROWING
    if a in _DECIMALS and b in _INTEGERS:
        return Shift.NARROWING
    if a in _INTEGERS and b in _FLOATS:
        # A double holds integers to 2^53 exactly: wide enough for what int32 holds.
        return Shift.WIDENING if _INTEGERS[a] <= (24 if _FLOATS[b] == 32 else 53) else Shift.CHANGED
    if (a in _FLOATS and b in _INTEGERS) or (a in _FLOATS and b in _DECIMALS):
        return Shift.NARROWING
    if a in _STRINGS and b in _STRINGS:
        return _compare(_length(left), _length(right))
    if a in _TIMES and b in _TIMES:
        return _compare(_TIMES[a], _TIMES[b])
    return Shift.CHANGED


def same(old: str, new: str, dialect: str | None = None) -> bool:
    return shift(old, new, dialect) is Shift.SAME


@functools.lru_cache(maxsize=4096)
def _parse(text: str, dialect: str | None) -> exp.DataType | None:
    # Cached: a project spells a few dozen types, over thousands of columns.
    try:
        parsed = exp.DataType.build(text, dialect=dialect or None)
    except (SqlglotError, ValueError):
        return None
    return parsed if isinstance(parsed, exp.DataType) else None


def _plain(text: str) -> str:
    return re.sub(r"\s+", "", text.lower())


def _compare(old: int, new: int) -> Shift:
    if new == old:
        return Shift.SAME
    return Shift.WIDENING if new > old else Shift.NARROWING


def _params(datatype: exp.DataType) -> list[int]:
    out: list[int] = []
    for param in datatype.expressions:
        text = param.this.sql() if isinstance(param, exp.DataTypeParam) else param.sql()
        if text.isdigit():
            out.append(int(text))
    return out


def _decimal(datatype: exp.DataType) -> tuple[int | None, int]:
    params = _params(datatype)
    if not params:
        return None, 0  # the warehouse's default precision: unknown here
    return params[0], params[1] if len(params) > 1 else 0


def _decimal_shift(old: tuple[int | None, int], new: tuple[int | None, int]) -> Shift:
    (p1, s1), (p2, s2) = old, new
    if p1 is None or p2 is None:
        # A size on one side only: the sizeless one is the warehouse's default, unknown here.
        return Shift.SAME if s1 == s2 or p1 is None or p2 is None else Shift.CHANGED
    whole1, whole2 = p1 - s1, p2 - s2
    if (whole1, s1) == (whole2, s2):
        return Shift.SAME
    if whole2 >= whole1 and s2 >= s1:
        return Shift.WIDENING
    return Shift.NARROWING


def _length(datatype: exp.DataType) -> int:
    params = _params(datatype)
    return params[0] if params else _UNBOUNDED
