"""`bot.review.datatype` (widening or narrowing) and `bot.review.privacy` (personal-looking
columns, by name and type)."""

from __future__ import annotations

import pytest

from bot.review.datatype import Shift, shift
from bot.review.privacy import category, classified


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("INTEGER", "BIGINT", Shift.WIDENING),
        ("BIGINT", "INTEGER", Shift.NARROWING),
        ("int", "int4", Shift.SAME),
        ("DECIMAL(18,2)", "DECIMAL(10,2)", Shift.NARROWING),
        ("DECIMAL(10,2)", "DECIMAL(18,4)", Shift.WIDENING),
        ("DECIMAL(10,2)", "DECIMAL(12,1)", Shift.NARROWING),  # loses a decimal place
        ("INTEGER", "DECIMAL(18,2)", Shift.WIDENING),
        ("INTEGER", "DECIMAL(5,0)", Shift.NARROWING),
        ("DOUBLE", "FLOAT", Shift.NARROWING),
        ("VARCHAR(10)", "VARCHAR(50)", Shift.WIDENING),
        ("VARCHAR(256)", "VARCHAR", Shift.WIDENING),
        ("TEXT", "VARCHAR", Shift.SAME),
        ("DATE", "TIMESTAMP", Shift.WIDENING),
        ("TIMESTAMP", "DATE", Shift.NARROWING),
        ("TIMESTAMP", "VARCHAR", Shift.CHANGED),
        ("VARCHAR", "INTEGER", Shift.CHANGED),
        ("", "INTEGER", Shift.SAME),  # unknown on one side: nothing to say
    ],
)
def test_type_shifts(old: str, new: str, expected: Shift) -> None:
    assert shift(old, new) is expected


def test_snowflake_number_sizes() -> None:
    assert shift("NUMBER(38,0)", "NUMBER(10,0)", "snowflake") is Shift.NARROWING


@pytest.mark.parametrize(
    ("name", "data_type", "expected"),
    [
        ("customer_email", "VARCHAR", "e-mail address"),
        ("emailAddress", "text", "e-mail address"),
        ("email_verified", "BOOLEAN", ""),  # a flag, not an address
        ("email_sent_at", "TIMESTAMP", ""),
        ("email_count", "BIGINT", ""),
        ("phone", "BIGINT", "phone number"),
        ("first_name", "VARCHAR", "person's name"),
        ("full_name", "", "person's name"),
        ("product_name", "VARCHAR", ""),
        ("date_of_birth", "DATE", "birth date"),
        ("dob", "DATE", "birth date"),
        ("national_id", "VARCHAR", "national id"),
        ("ssn", "VARCHAR", "national id"),
        ("ip_address", "VARCHAR", "IP address"),
        ("client", "INET", "IP address"),
        ("billing_street", "VARCHAR", "postal address"),
        ("zip", "INTEGER", "postal address"),
        ("country_code", "VARCHAR", ""),
        ("hotel", "VARCHAR", ""),  # "tel" only as a word
    ],
)
def test_personal_data_by_name_and_type(name: str, data_type: str, expected: str) -> None:
    assert category(name, data_type) == expected


def test_a_classification_in_meta_or_tags() -> None:
    assert classified({"pii": False})  # a decision, whatever it is
    assert classified({"Classification": "internal"})
    assert classified({}, ["PII"])
    assert not classified({"owner": "@dana"}, ["finance"])
