"""Owners: normalise the names Airflow and dbt give, and turn them into chat mentions.

Airflow DAG owners are free text ("dana", "data-platform"); dbt owners come from `meta.owner`
("@dana", an e-mail) and group and exposure owners (an e-mail, else a name). One person is
often written several ways across them — "dana", "@dana", "dana@example.com" — so owners are
merged per person before they are shown: a handle and an e-mail whose local part is that
handle are one person, shown as the handle — ``@dana``, the mention — everywhere; an e-mail
with no handle beside it as the e-mail; names with spaces ("Finance Data Team") as written.
The same form goes into text and JSON.

The directory maps owners to Slack users / user groups, Discord users and GitHub logins as
configured (`PIPEBOT_OWNERS__SLACK`, `__DISCORD`, `__GITHUB`), by handle or by e-mail, either one
finding the person written the other way; an unmapped owner is shown in the form above so the
reply is still useful.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.settings import OwnerSettings

# Airflow's default owner means "nobody set one".
_PLACEHOLDERS = {"airflow", "", "none", "unknown"}


def normalise(owner: str) -> str:
    return owner.strip().lstrip("@").strip().lower()


def is_email(owner: str) -> bool:
    text = owner.strip().lstrip("@")
    return "@" in text[1:] and " " not in text


def _local_part(email: str) -> str:
    return normalise(email).split("@", 1)[0]


def display(owner: str) -> str:
    """How an owner is written in replies and JSON: ``dana@example.com``, ``@dana``, or a
    name with spaces as it is."""
    plain = owner.strip().lstrip("@").strip()
    if is_email(plain):
        return plain.lower()
    return plain if " " in plain else f"@{plain}"


def merge_people(owners: Iterable[str], *, known: Iterable[str] = ()) -> tuple[str, ...]:
    """`owners` with each e-mail replaced by the person's handle when `owners` or `known` (the
    other owners in the same reply) give one ("dana@example.com" next to "@dana" or "dana"),
    first-seen order, duplicates (case-insensitive) dropped; the other entries keep their
    spelling. An e-mail whose local part other e-mails share (dana@a.com, dana@b.com) stays."""
    entries = [o.strip() for o in owners if o and o.strip()]
    handles: dict[str, str] = {}  # normalised handle → its first spelling
    emails: dict[str, set[str]] = {}  # local part → the e-mails that have it
    for owner in [*entries, *(k.strip() for k in known if k and k.strip())]:
        key = normalise(owner)
        if is_email(owner):
            emails.setdefault(_local_part(owner), set()).add(key)
        elif " " not in key and key not in _PLACEHOLDERS:
            handles.setdefault(key, owner)
    kept: list[str] = []
    seen: set[str] = set()
    for owner in entries:
        key, shown = normalise(owner), owner
        local = _local_part(owner) if is_email(owner) else ""
        if local in handles and len(emails[local]) == 1:
            key, shown = local, handles[local]
        if key not in seen:
            seen.add(key)
            kept.append(shown)
    return tuple(kept)


def unique_owners(owners: Iterable[str], *, known: Iterable[str] = ()) -> tuple[str, ...]:
    """One entry per person in first-seen order, placeholders dropped, each written as
    `display` writes it. `known`: every owner the reply names, so that a person is written
    the same way on each of its lines."""
    real = [o for o in owners if normalise(o) not in _PLACEHOLDERS]
    return tuple(dict.fromkeys(display(o) for o in merge_people(real, known=known)))


@dataclass(frozen=True)
class OwnerDirectory:
    slack: dict[str, str] = field(default_factory=dict)
    discord: dict[str, str] = field(default_factory=dict)
    github: dict[str, str] = field(default_factory=dict)  # owner → login or org/team

    @classmethod
    def from_settings(cls, settings: OwnerSettings) -> OwnerDirectory:
        def pairs(values: list[str]) -> dict[str, str]:
            return {
                normalise(name): ident.strip()
                for name, _, ident in (v.partition("=") for v in values)
            }

        return cls(
            slack=pairs(settings.slack),
            discord=pairs(settings.discord),
            github=pairs(settings.github),
        )

    def github_login(self, owner: str) -> str:
        """The GitHub login (or ``org/team``) configured for `owner`, "" when none is."""
        return _lookup(self.github, owner).lstrip("@")

    def mention(self, owner: str, platform: str) -> str:
        table = self.slack if platform == "slack" else self.discord if platform == "discord" else {}
        ident = _lookup(table, owner)
        if ident and platform == "slack":
            # User groups (S…) use the subteam syntax; users (U…/W…) the plain one.
            return f"<!subteam^{ident}>" if ident.startswith("S") else f"<@{ident}>"
        if ident and platform == "discord":
            if ident.startswith("role:"):
                return f"<@&{ident.removeprefix('role:')}>"
            return f"<@{ident}>"
        return display(owner)

    def mentions(self, owners: Iterable[str], platform: str, *, known: Iterable[str] = ()) -> str:
        """`owners` as mentions, one per person; `known` as for `unique_owners`."""
        people = unique_owners(owners, known=known)
        return ", ".join(self.mention(o, platform) for o in people) or "–"


def _lookup(table: dict[str, str], owner: str) -> str:
    """The id configured for `owner`, by the form given or the other form of the same person
    (the e-mail's local part for a handle, a handle for an e-mail)."""
    key = normalise(owner)
    if key in table:
        return table[key]
    if is_email(owner):
        return table.get(_local_part(owner), "")
    matches = [
        ident for name, ident in table.items() if is_email(name) and _local_part(name) == key
    ]
    return matches[0] if len(set(matches)) == 1 else ""
