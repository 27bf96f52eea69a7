"""Owners: normalise the names Airflow and dbt give, and turn them into chat mentions.

Airflow DAG owners are free text ("dana", "data-platform"); dbt owners come from `meta.owner`
("@dana", an e-mail) and group owners. The directory maps them to Slack users / user groups and
Discord users as configured (`PIPEBOT_OWNERS__SLACK`, `PIPEBOT_OWNERS__DISCORD`); an unmapped
owner is shown as plain ``@name`` so the reply is still useful.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.settings import OwnerSettings

# Airflow's default owner means "nobody set one".
_PLACEHOLDERS = {"airflow", "", "none", "unknown"}


def normalise(owner: str) -> str:
    return owner.strip().lstrip("@").strip().lower()


def unique_owners(owners: Iterable[str]) -> tuple[str, ...]:
    """Owners in first-seen order, de-duplicated case-insensitively, placeholders dropped."""
    seen: dict[str, str] = {}
    for owner in owners:
        key = normalise(owner)
        if key not in _PLACEHOLDERS and key not in seen:
            seen[key] = owner.strip().lstrip("@")
    return tuple(seen.values())


@dataclass(frozen=True)
class OwnerDirectory:
    slack: dict[str, str] = field(default_factory=dict)
    discord: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: OwnerSettings) -> OwnerDirectory:
        def pairs(values: list[str]) -> dict[str, str]:
            return {
                normalise(name): ident.strip()
                for name, _, ident in (v.partition("=") for v in values)
            }

        return cls(slack=pairs(settings.slack), discord=pairs(settings.discord))

    def mention(self, owner: str, platform: str) -> str:
        key = normalise(owner)
        if platform == "slack" and key in self.slack:
            ident = self.slack[key]
            # User groups (S…) use the subteam syntax; users (U…/W…) the plain one.
            return f"<!subteam^{ident}>" if ident.startswith("S") else f"<@{ident}>"
        if platform == "discord" and key in self.discord:
            ident = self.discord[key]
            if ident.startswith("role:"):
                return f"<@&{ident.removeprefix('role:')}>"
            return f"<@{ident}>"
        plain = owner.strip().lstrip("@")
        # An e-mail address is shown as is; a bare name becomes a readable @handle.
        return plain if "@" in plain else f"@{plain}"

    def mentions(self, owners: Iterable[str], platform: str) -> str:
        return ", ".join(self.mention(o, platform) for o in unique_owners(owners)) or "–"
