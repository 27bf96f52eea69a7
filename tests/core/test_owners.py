"""One person, one mention: owners as Airflow and dbt write them, merged per person."""

from __future__ import annotations

import pytest

from bot.owners import OwnerDirectory, merge_people, unique_owners
from integrations.dbt.artifacts import normalize_owners


@pytest.mark.parametrize(
    ("owners", "expected"),
    [
        # Airflow's "dana", dbt's "@dana", a dashboard's "dana@example.com": one person.
        (
            ["dana", "@dana", "finance@example.com", "dana@example.com"],
            ("@dana", "finance@example.com"),
        ),
        (["DANA@Example.com", "Dana"], ("@Dana",)),
        # An e-mail alone stays an e-mail; a name with spaces stays a name.
        (["lee@example.com", "Finance Data Team"], ("lee@example.com", "Finance Data Team")),
        # Two e-mails share the local part: which one "@dana" is cannot be told.
        (["@dana", "dana@a.com", "dana@b.com"], ("@dana", "dana@a.com", "dana@b.com")),
        # Airflow's default owner is nobody.
        (["airflow", "airflow@example.com"], ("airflow@example.com",)),
    ],
)
def test_unique_owners_merge_people(owners: list[str], expected: tuple[str, ...]) -> None:
    assert unique_owners(owners) == expected


def test_the_other_owners_of_a_reply_name_the_person() -> None:
    # A dashboard line lists only "dana@example.com"; the reply also names "@dana".
    assert unique_owners(["dana@example.com"], known=["@dana", "@sam"]) == ("@dana",)
    assert merge_people(["dana@example.com"]) == ("dana@example.com",)


def test_one_meta_owner_string_naming_one_person_twice() -> None:
    assert normalize_owners("@dana, dana@example.com") == ("@dana",)
    assert normalize_owners(["@lee", "crm-team@example.com"]) == ("@lee", "crm-team@example.com")


def test_the_directory_finds_a_person_by_handle_or_by_email() -> None:
    by_handle = OwnerDirectory(slack={"dana": "U1"})
    by_email = OwnerDirectory(slack={"dana@example.com": "U1"}, discord={"dana@example.com": "7"})
    assert by_handle.mention("dana@example.com", "slack") == "<@U1>"
    assert by_email.mention("@dana", "slack") == "<@U1>"
    assert by_email.mentions(["dana", "dana@example.com"], "discord") == "<@7>"
    assert OwnerDirectory().mentions(["dana", "Finance Data Team"], "console") == (
        "@dana, Finance Data Team"
    )
