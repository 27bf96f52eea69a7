"""Access rules: channels match the channel or what contains it, users and roles are
alternatives, the explanation names what is missing."""

from __future__ import annotations

from bot.access import AccessPolicy
from bot.messages import InboundMessage
from bot.settings import AccessSettings


def message(**fields: object) -> InboundMessage:
    values: dict[str, object] = {
        "platform": "discord",
        "workspace": "G1",
        "channel": "C-thread",
        "thread": "t",
        "user": "U1",
        "text": "incident ack 1",
        "event_id": "e",
    }
    values.update(fields)
    return InboundMessage(**values)  # type: ignore[arg-type]


def test_a_server_id_opens_a_group_to_all_its_channels_and_a_channel_to_its_threads() -> None:
    by_server = AccessPolicy.from_settings(AccessSettings(read_channels=["G1"]))
    by_channel = AccessPolicy.from_settings(AccessSettings(read_channels=["C-parent"]))
    inside = message(within=("C-parent", "G1"))
    elsewhere = message(workspace="G2", within=("C-other", "G2"))
    assert by_server.allows_message("read", inside)
    assert not by_server.allows_message("read", elsewhere)
    assert by_channel.allows_message("read", inside)
    assert not by_channel.allows_message("read", elsewhere)


def test_users_and_roles_are_alternatives() -> None:
    policy = AccessPolicy.from_settings(
        AccessSettings(incidents_users=["U-lead"], incidents_roles=["R-oncall"])
    )
    assert policy.allows_message("incidents", message(user="U-lead"))
    assert policy.allows_message("incidents", message(roles=("R-x", "R-oncall")))
    assert not policy.allows_message("incidents", message(roles=("R-x",)))
    # Other groups stay open.
    assert policy.allows_message("read", message())


def test_a_role_refusal_says_roles() -> None:
    policy = AccessPolicy.from_settings(AccessSettings(incidents_roles=["R-oncall"]))
    denial = policy.denial("incidents", "`incident ack`")
    assert denial.ephemeral
    assert "configured roles" in denial.text and "none of your roles" in denial.text
