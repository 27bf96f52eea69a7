"""Errors raised by the connectors.

    bot.errors.SourceError
     ├── UpstreamUnavailable (+ SourceUnavailable)  cannot connect, timed out, 429/5xx after retries
     ├── UpstreamAuthError   (+ SourceAuthError)    401 / 403
     ├── UpstreamNotFound    (+ NotFound)           404, or an unknown name in local artifacts
     ├── UpstreamError                              any other unexpected answer (4xx, bad JSON)
     ├── ReadOnlyRefused     (+ ReadOnlyViolation)  a write was attempted and refused locally
     └── SqlRefused          (+ ReadOnlyViolation)  the SQL guard rejected a statement

Each subclasses the core's `SourceError` family, so the core can catch them without importing
this package. Messages name the upstream status and endpoint and never contain credentials.
"""

from __future__ import annotations

from bot.errors import NotFound, ReadOnlyViolation, SourceAuthError, SourceError, SourceUnavailable


class UpstreamError(SourceError):
    """The source answered, but not with what we asked for."""

    def __init__(self, system: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(system, reason)
        self.status = status


class UpstreamUnavailable(UpstreamError, SourceUnavailable):
    pass


class UpstreamAuthError(UpstreamError, SourceAuthError):
    pass


class UpstreamNotFound(NotFound):
    pass


class ReadOnlyRefused(ReadOnlyViolation):
    pass


class SqlRefused(ReadOnlyViolation):
    pass
