"""The tool contract between connectors and the agent.

A `Tool` is a named, typed, read-only function: the model fills its *parameters* (a pydantic
model), never SQL, URLs or shell. Every call returns a `ToolResult` — tools never raise into the
agent loop. A connector failure becomes ``status=error`` with the upstream reason verbatim, so the
model (and the person reading the answer) can see what went wrong.

Tool descriptions are prose reviewed like code: they live in a Markdown file next to the toolset
(one ``## tool_name`` heading per tool) and are loaded with `load_descriptions`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from bot.errors import SourceError


class ToolStatus(StrEnum):
    SUCCESS = "success"
    NO_DATA = "no_data"  # the call worked and found nothing; `data` says what was searched
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """The envelope every tool returns.

    `invocation` is the exact call made upstream ("GET /api/v2/dags/x/dagRuns?state=failed"),
    shown to users as a source and recorded in the audit store. `data` is JSON-serialisable.
    """

    status: ToolStatus
    invocation: str
    system: str
    data: Any = None
    error: str | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not ToolStatus.ERROR

    def as_text(self) -> str:
        """What the model sees: the data as compact JSON, or the error verbatim."""
        if self.status is ToolStatus.ERROR:
            return f"ERROR from {self.system} ({self.invocation}): {self.error}"
        return json.dumps(self.data, default=str, ensure_ascii=False, separators=(",", ":"))


P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, kw_only=True)
class Tool(Generic[P]):
    """A read-only capability the agent may call.

    `run` receives validated parameters and returns a `ToolResult`; it may raise
    `SourceError`, which `call` turns into an error result.
    """

    name: str
    description: str
    params: type[P]
    run: Callable[[P], ToolResult]
    system: str

    def input_schema(self) -> dict[str, Any]:
        schema = self.params.model_json_schema()
        schema.pop("title", None)
        return schema

    def call(self, raw: Mapping[str, Any]) -> ToolResult:
        """Validate `raw`, run the tool, never raise."""
        started = time.perf_counter()
        invocation = f"{self.name}({json.dumps(dict(raw), default=str, sort_keys=True)})"
        try:
            params = self.params.model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            return ToolResult(
                status=ToolStatus.ERROR,
                invocation=invocation,
                system=self.system,
                error=f"invalid parameters: {problems}",
            )
        try:
            result = self.run(params)
        except SourceError as exc:
            result = ToolResult(
                status=ToolStatus.ERROR, invocation=invocation, system=exc.system, error=exc.reason
            )
        elapsed = (time.perf_counter() - started) * 1000
        return ToolResult(
            status=result.status,
            invocation=result.invocation,
            system=result.system,
            data=result.data,
            error=result.error,
            duration_ms=elapsed,
        )


@dataclass(frozen=True, kw_only=True)
class Check:
    """Outcome of a toolset's start-up check (``pipebot doctor`` prints one row each)."""

    system: str
    ok: bool
    detail: str
    target: str = ""  # where it looked, e.g. the base URL (never with credentials)
    version: str = ""


class Toolset(Protocol):
    """A connector's tools plus a check that they can work."""

    @property
    def system(self) -> str: ...

    def tools(self) -> Sequence[Tool[Any]]: ...

    def check(self) -> Check: ...


@dataclass(frozen=True, kw_only=True)
class StaticToolset:
    """A toolset assembled from a list of tools and a check function."""

    system: str
    tool_list: tuple[Tool[Any], ...]
    checker: Callable[[], Check] = field(repr=False)

    def tools(self) -> Sequence[Tool[Any]]:
        return self.tool_list

    def check(self) -> Check:
        return self.checker()


def load_descriptions(package: str, filename: str) -> dict[str, str]:
    """Read ``## name`` sections of a Markdown file shipped in `package`.

    Raises `KeyError`-free: a missing section is a packaging bug caught by the tests that
    build every toolset.
    """
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    found: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("## "):
            if name is not None:
                found[name] = "\n".join(lines).strip()
            name, lines = line[3:].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        found[name] = "\n".join(lines).strip()
    return found
