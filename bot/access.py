"""Who may use which command group, from `AccessSettings`.

Groups: ``read`` (status, dag, lineage …), ``ask`` (the agent; costs tokens), ``incidents``
(acknowledge, resolve, snooze, mute), ``digest`` (schedule and remove digests). A group with no
channels and no users configured is open to everyone; otherwise a request must come from a
listed channel *and* (when users are listed) a listed user.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import Reply, Tone
from bot.settings import AccessSettings

GROUPS = ("read", "ask", "incidents", "digest")


@dataclass(frozen=True)
class Rule:
    channels: frozenset[str]
    users: frozenset[str]

    def allows(self, *, user: str, channel: str) -> bool:
        if self.channels and channel not in self.channels:
            return False
        return not self.users or user in self.users


@dataclass(frozen=True)
class AccessPolicy:
    rules: dict[str, Rule]

    @classmethod
    def open(cls) -> AccessPolicy:
        return cls({})

    @classmethod
    def from_settings(cls, settings: AccessSettings) -> AccessPolicy:
        return cls(
            {
                group: Rule(
                    frozenset(getattr(settings, f"{group}_channels")),
                    frozenset(getattr(settings, f"{group}_users")),
                )
                for group in GROUPS
            }
        )

    def allows(self, group: str, *, user: str, channel: str) -> bool:
        rule = self.rules.get(group)
        return rule is None or rule.allows(user=user, channel=channel)

    def denial(self, group: str, what: str) -> Reply:
        """The ephemeral explanation an unauthorised user gets."""
        rule = self.rules[group]
        where = "this channel" if rule.channels else "you"
        return Reply(
            title="Not allowed here",
            tone=Tone.WARNING,
            text=(
                f"{what} is limited to configured {'channels' if rule.channels else 'users'} "
                f"(command group `{group}`), and {where} "
                f"{'is' if rule.channels else 'are'} not on the list. "
                "Ask the pipebot operator to add it (PIPEBOT_ACCESS__* settings)."
            ),
            ephemeral=True,
        )
