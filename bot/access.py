"""Who may use which command group, from `AccessSettings`.

Groups: ``read`` (status, dag, lineage …), ``ask`` (the agent; costs tokens), ``incidents``
(acknowledge, resolve, snooze, mute), ``digest`` (schedule and remove digests). A group with no
channels, users or roles configured is open to everyone; otherwise a request must come from a
listed place *and* (when users or roles are listed) from a listed user or a member holding a
listed role. A place is the channel itself or what contains it (`InboundMessage.within`: a
Discord thread's parent channel, its server), so one server id opens a group to a whole server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.messages import InboundMessage, Reply, Tone
from bot.settings import AccessSettings

GROUPS = ("read", "ask", "incidents", "digest")


@dataclass(frozen=True)
class Rule:
    channels: frozenset[str]
    users: frozenset[str]
    roles: frozenset[str] = frozenset()

    def allows(
        self, *, user: str, channel: str, roles: Iterable[str] = (), within: Iterable[str] = ()
    ) -> bool:
        if self.channels and not self.channels & {channel, *within}:
            return False
        if not self.users and not self.roles:
            return True
        return user in self.users or bool(self.roles & set(roles))


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
                    frozenset(getattr(settings, f"{group}_roles")),
                )
                for group in GROUPS
            }
        )

    def allows(
        self,
        group: str,
        *,
        user: str,
        channel: str,
        roles: Iterable[str] = (),
        within: Iterable[str] = (),
    ) -> bool:
        rule = self.rules.get(group)
        return rule is None or rule.allows(user=user, channel=channel, roles=roles, within=within)

    def allows_message(self, group: str, message: InboundMessage) -> bool:
        return self.allows(
            group,
            user=message.user,
            channel=message.channel,
            roles=message.roles,
            within=message.within,
        )

    def denial(self, group: str, what: str) -> Reply:
        """The ephemeral explanation an unauthorised user gets."""
        rule = self.rules[group]
        if rule.channels:
            listed, where, verb = "channels", "this channel", "is"
        elif rule.roles and not rule.users:
            listed, where, verb = "roles", "none of your roles", "is"
        else:
            listed, where, verb = "people", "you", "are"
        return Reply(
            title="Not allowed here",
            tone=Tone.WARNING,
            text=(
                f"{what} is limited to configured {listed} (command group `{group}`), and "
                f"{where} {verb} not on the list. "
                "Ask the pipebot operator to add it (PIPEBOT_ACCESS__* settings)."
            ),
            ephemeral=True,
        )
