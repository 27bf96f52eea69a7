"""A `ChangeReview` as JSON: schema ``pipebot.schema_review/1``, every key documented in
docs/schema-review.md (a test holds the two together).

The document is a public contract for CI steps and bots: keys are only ever added; a key
removed or changing meaning changes ``schema``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.review.change import Change, Classification, Impact, Reader
from bot.review.privacy import PrivacyFlag
from bot.review.report import ChangeReview, StateInfo

SCHEMA = "pipebot.schema_review/1"


def to_dict(review: ChangeReview) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "verdict": str(review.verdict),
        "exit_code": review.exit_code,
        "reason": review.reason,
        "reviewed_at": _time(review.reviewed_at),
        "select": review.select,
        "base": _state(review.base),
        "target": _state(review.target),
        "summary": {
            "changes": len(review.changes),
            "breaking": len(review.of(Classification.BREAKING)),
            "partial_breaking": len(review.of(Classification.PARTIAL)),
            "non_breaking": len(review.of(Classification.NON_BREAKING)),
            "privacy": len(review.privacy),
            "contracted": len(review.contracted),
        },
        "owners_to_notify": list(review.owners),
        "changes": [_change(c) for c in review.changes],
        "privacy": [_flag(f) for f in review.privacy],
        "declared_only": list(review.declared_only),
        "notes": list(review.notes),
    }


def to_json(review: ChangeReview, *, indent: int | None = 2) -> str:
    return json.dumps(to_dict(review), indent=indent, ensure_ascii=False)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _state(info: StateInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "ref": info.ref,
        "label": info.label,
        "project": info.project,
        "dbt_version": info.dbt_version,
        "adapter": info.adapter,
        "generated_at": _time(info.generated_at),
        "catalog_at": _time(info.catalog_at),
        "run_id": info.run_id,
        "url": info.url,
        "nodes": info.nodes,
    }


def _change(change: Change) -> dict[str, Any]:
    return {
        "kind": str(change.kind),
        "classification": str(change.classification),
        "reason": change.reason,
        "node": change.node,
        "name": change.name,
        "resource_type": change.resource_type,
        "column": change.column,
        "new_column": change.new_column,
        "before": change.before,
        "after": change.after,
        "shift": change.shift,
        "knock_on": change.knock_on,
        "because": list(change.because),
        "contracted": change.contracted,
        "public": change.public,
        "owners": list(change.owners),
        "evidence": [{"kind": e.kind, "detail": e.detail} for e in change.evidence],
        "impact": _impact(change.impact),
    }


def _impact(impact: Impact | None) -> dict[str, Any] | None:
    if impact is None:
        return None
    return {
        "readers": [_reader(r) for r in impact.readers],
        "owners": list(impact.owners),
        "unknown": list(impact.unknown),
        "truncated": impact.truncated,
    }


def _reader(reader: Reader) -> dict[str, Any]:
    return {
        "unique_id": reader.unique_id,
        "name": reader.name,
        "resource_type": reader.resource_type,
        "certainty": reader.certainty,
        "via": reader.via,
        "depth": reader.depth,
        "columns": list(reader.columns),
        "owners": list(reader.owners),
        "url": reader.url,
    }


def _flag(flag: PrivacyFlag) -> dict[str, Any]:
    return {
        "node": flag.node,
        "name": flag.name,
        "column": flag.column,
        "data_type": flag.data_type,
        "category": flag.category,
        "origin": flag.origin,
        "owners": list(flag.owners),
    }
