"""Environment variables that look like pipebot settings but are not one.

A misspelt variable (``PIPEBOT_AIRFLOW_BASE_URL`` with one underscore) is silently ignored by
the settings loader, and the connector it was meant for stays off. `unknown` names every
``PIPEBOT_*`` variable (in the environment or the ``.env`` file) that is not a setting, with
the closest real one; `pipebot doctor` shows them and `pipebot serve` logs them at start-up.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from bot.settings import reference

PREFIX = "PIPEBOT_"


@dataclass(frozen=True)
class Unknown:
    name: str
    suggestion: str | None  # the closest real setting, when one is close

    def __str__(self) -> str:
        hint = f"; did you mean {self.suggestion}?" if self.suggestion else ""
        return f"{self.name} is not a pipebot setting{hint}"


def unknown(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> list[Unknown]:
    """The ``PIPEBOT_*`` variables that are no setting (in `environ`, default the process's
    environment, and in `env_file`)."""
    # Only the names are read, to find misspelt settings; their values go through Settings.
    environ = os.environ if environ is None else environ  # noqa: TID251
    names = [name for name in environ if name.upper().startswith(PREFIX)]
    if env_file is not None and Path(env_file).is_file():
        names += [n for n in dotenv_values(env_file) if n.upper().startswith(PREFIX)]
    return _judge(dict.fromkeys(names))


def _judge(names: Iterable[str]) -> list[Unknown]:
    known = {doc.env for doc in reference()}
    found = []
    for name in names:
        if name.upper() in known:
            continue
        close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.8)
        found.append(Unknown(name, close[0] if close else None))
    return found
