"""The agent's prompts: Markdown files in this package, reviewed like code.

    prompt("system")                                  # the Data Engineer persona (static)
    prompt("triage", subject="DAG orders_daily", facts="…")   # a playbook prompt

Placeholders are ``$name`` (`string.Template`); a literal dollar sign is ``$$``. A missing value
raises `KeyError`, so a playbook cannot send a half-filled prompt. The system prompt has no
placeholders on purpose: it opens the cached prefix of every request, and anything that varies
(time, configured systems) goes into the question's context block instead.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

__all__ = ["names", "prompt"]


@cache
def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def names() -> list[str]:
    """Every prompt shipped, without the ``.md`` suffix."""
    return sorted(
        entry.name.removesuffix(".md")
        for entry in resources.files(__package__).iterdir()
        if entry.name.endswith(".md")
    )


def prompt(name: str, /, **values: str) -> str:
    """The prompt `name` with its ``$placeholders`` filled from `values`."""
    return Template(_source(name)).substitute(values).strip()
