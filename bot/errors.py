"""The core's exception tree.

    BotError
     ├── ConfigError          a setting is missing or invalid (start-up stops, exit code 2)
     ├── StoreError           the bot's own database failed or is not migrated
     ├── SourceError          a connector could not answer (Airflow, dbt, warehouse)
     │    ├── SourceUnavailable   unreachable, timed out, 5xx after retries
     │    ├── SourceAuthError     401/403: credentials missing, wrong or not permitted
     │    ├── NotFound            the thing asked about does not exist (carries suggestions)
     │    │    └── Ambiguous      a name fits several things (carries the candidates)
     │    └── ReadOnlyViolation   something tried to write; refused before it left the process
     └── AgentError           the LLM agent failed (budget, API errors after retries)

Connectors subclass `SourceError` so the core can catch their failures without importing
them. Messages are written for the person reading them: what failed, where, what to do.
They never contain secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class BotError(Exception):
    """Base of every error pipebot raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or invalid."""


class StoreError(BotError):
    """The bot's own database failed."""


class SourceError(BotError):
    """A read-only source could not answer.

    `system` names the source as users know it ("Airflow", "dbt Cloud", "warehouse");
    `reason` is a one-line, secret-free explanation such as
    "GET /api/v2/dags returned 503 Service Unavailable".
    """

    def __init__(self, system: str, reason: str) -> None:
        super().__init__(f"{system}: {reason}")
        self.system = system
        self.reason = reason


class SourceUnavailable(SourceError):
    """The source is unreachable, timed out or kept failing after retries."""


class SourceAuthError(SourceError):
    """The source refused our credentials (401) or the permission (403)."""


class NotFound(SourceError):
    """The DAG, run, model or table asked about does not exist."""

    def __init__(self, system: str, reason: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(system, reason)
        self.suggestions = tuple(suggestions)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One of the things an ambiguous name fits, and how to name it so only it matches."""

    ref: str  # e.g. "raw.orders" or "seed.shop.raw_orders"
    kind: str  # e.g. "seed", "source", "model"
    name: str  # how it is usually shown, e.g. "raw_orders"
    detail: str = ""  # what tells it apart, e.g. its warehouse table


class Ambiguous(NotFound):
    """A name fits several things and picking one silently could answer the wrong question
    (a seed and a source over the same table, a model named like a source table).

    A `NotFound` so that code which only knows "no single match" still degrades well: the
    suggestions are the exact names of the candidates.
    """

    def __init__(self, system: str, reason: str, candidates: Sequence[Candidate]) -> None:
        super().__init__(system, reason, suggestions=[c.ref for c in candidates])
        self.candidates = tuple(candidates)


class ReadOnlyViolation(SourceError):
    """A write was attempted and refused before anything was sent."""


class AgentError(BotError):
    """The agent could not produce an answer."""
