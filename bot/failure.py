"""Classify a task failure from the facts a log gives: exception type, message, last lines.

The categories are what an on-call data engineer decides first — "is this ours to fix, or do we
wait for someone?" Rules are ordered, specific before generic, and every classification says
which evidence matched so the reply can show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.facts import LogError


class Category(StrEnum):
    TIMEOUT = "timeout"
    OOM = "out of memory"
    PERMISSIONS = "permissions"
    CONNECTION = "connection"
    UPSTREAM_DATA = "upstream data/schema"
    CODE_BUG = "code bug"
    DEPENDENCY = "dependency failure"
    UNKNOWN = "unknown"


ADVICE = {
    Category.TIMEOUT: "Check whether the task got slower (data volume, locks) or the timeout is "
    "too tight; compare with its usual duration.",
    Category.OOM: "The worker ran out of memory: reduce the batch, raise the task's resources, "
    "or push the work down to the warehouse.",
    Category.PERMISSIONS: "A credential or grant changed: check the connection's user and its "
    "grants on the object named in the error.",
    Category.CONNECTION: "A service was unreachable: check it is up; if this is intermittent, "
    "retries with backoff usually absorb it.",
    Category.UPSTREAM_DATA: "The input changed shape or content: check the upstream source or "
    "model named in the error and who changed it.",
    Category.CODE_BUG: "A bug in the task's code: see the frames below; the last deploy of the "
    "DAG is the first suspect.",
    Category.DEPENDENCY: "This task did not run because something upstream failed; fix the "
    "root cause listed first.",
    Category.UNKNOWN: "No known pattern matched; the log excerpt below is the best lead.",
}


@dataclass(frozen=True)
class Classification:
    category: Category
    evidence: str  # what matched, e.g. "exception type KeyError + 'column … missing'"

    @property
    def advice(self) -> str:
        return ADVICE[self.category]


_I = re.IGNORECASE
# (category, exception-type pattern, message/log pattern); either may match.
_RULES: tuple[tuple[Category, re.Pattern[str] | None, re.Pattern[str] | None], ...] = (
    (
        Category.OOM,
        re.compile(r"^(MemoryError|OutOfMemoryError)$"),
        re.compile(
            r"out of memory|OOMKilled|exit code 137|Negsignal\.SIGKILL|killed by signal 9", _I
        ),
    ),
    (
        Category.TIMEOUT,
        re.compile(r"(Timeout|TimedOut)(Error|Exception)?$|^AirflowTaskTimeout$"),
        re.compile(r"timed out|timeout exceeded|statement timeout|execution timeout", _I),
    ),
    (
        Category.PERMISSIONS,
        re.compile(r"^(PermissionError|AccessDenied\w*|InsufficientPrivilege|Forbidden\w*)$"),
        re.compile(
            r"permission denied|access denied|insufficient privileges?|not authori[sz]ed|"
            r"\b403\b|forbidden|AccessDenied",
            _I,
        ),
    ),
    (
        Category.UPSTREAM_DATA,
        re.compile(r"^(UndefinedColumn|UndefinedTable|BinderException|ProgrammingError)$"),
        re.compile(
            r"column \S+ (does not exist|not found|missing)|missing column|no such column|"
            r"invalid identifier|schema (changed|mismatch)|unexpected (column|schema)|"
            r"Binder Error|Referenced column|upstream schema|duplicate key|"
            r"violates (not-null|unique|foreign key)|could not convert|Conversion Error",
            _I,
        ),
    ),
    (
        Category.CONNECTION,
        re.compile(
            r"^(ConnectionError|ConnectionRefusedError|ConnectionResetError|OperationalError|"
            r"SSLError|MaxRetryError|NewConnectionError|gaierror|ServiceUnavailable)$"
        ),
        re.compile(
            r"connection (refused|reset|aborted|closed)|could not connect|unable to connect|"
            r"name or service not known|temporary failure in name resolution|"
            r"\b(502|503|504)\b|service unavailable|broken pipe",
            _I,
        ),
    ),
    (
        Category.CODE_BUG,
        re.compile(
            r"^(TypeError|AttributeError|NameError|ZeroDivisionError|SyntaxError|IndexError|"
            r"AssertionError|NotImplemented(?:Error)|UnboundLocalError|RecursionError|ImportError|"
            r"ModuleNotFoundError|KeyError|ValueError)$"
        ),
        None,
    ),
)


def classify(errors: tuple[LogError, ...], log_lines: tuple[str, ...] = ()) -> Classification:
    """Classify from the innermost error (the last one) first, then from the log tail."""
    for error in reversed(errors):
        for category, _, text_pattern in _RULES:
            # Message patterns first: a KeyError naming a missing column is upstream data,
            # not a code bug, even though KeyError alone would say "code".
            if text_pattern is not None:
                found = text_pattern.search(error.message)
                if found:
                    return Classification(category, f"{error.exc_type}: “{found.group(0)}”")
        for category, type_pattern, _ in _RULES:
            if type_pattern is not None and type_pattern.search(error.exc_type.split(".")[-1]):
                return Classification(category, f"exception type {error.exc_type}")
    tail = "\n".join(log_lines[-50:])
    for category, _, text_pattern in _RULES:
        if text_pattern is not None:
            found = text_pattern.search(tail)
            if found:
                return Classification(category, f"log line “{found.group(0)}”")
    return Classification(Category.UNKNOWN, "no known pattern in the error or the log tail")
