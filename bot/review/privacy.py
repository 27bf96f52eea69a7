"""Columns that look like personal data — by name and type, never by reading a value.

A column is personal-looking when a word of its name (split at ``_``, ``-``, spaces and case
changes) names a kind of personal data — e-mail, phone, a person's name, postal address,
birth date, a national id, an IP address — and its type can hold such data: a boolean
(``email_verified``) or a timestamp (``email_sent_at``) cannot, a number can only be a phone,
an id, a postcode or an IP. An ``inet`` column is an IP address whatever its name::

    category("customer_email", "VARCHAR")     # 'e-mail address'
    category("email_verified", "BOOLEAN")     # ''
    category("date_of_birth", "DATE")         # 'birth date'

A column is classified when its ``meta`` (or ``config.meta``) has one of `CLASSIFICATION_KEYS`
(any value: ``pii: false`` is a classification too) or it carries one of `CLASSIFICATION_TAGS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# (category, words, word sequences), checked in this order: "ip_address" is an IP address,
# "email_address" an e-mail address, before "address" makes either a postal one.
_CATEGORIES: tuple[tuple[str, frozenset[str], tuple[tuple[str, ...], ...]], ...] = (
    ("e-mail address", frozenset({"email", "mail", "emailaddress"}), (("e", "mail"),)),
    ("IP address", frozenset({"ip", "ipv4", "ipv6", "ipaddress"}), (("ip", "address"),)),
    (
        "phone number",
        frozenset({"phone", "mobile", "msisdn", "telephone", "tel", "cellphone", "fax"}),
        (),
    ),
    (
        "person's name",
        frozenset(
            {
                "surname",
                "lastname",
                "firstname",
                "fullname",
                "forename",
                "givenname",
                "familyname",
                "maidenname",
            }
        ),
        tuple(
            (first, "name")
            for first in ("first", "last", "full", "given", "family", "middle", "maiden", "sur")
        ),
    ),
    (
        "birth date",
        frozenset({"birth", "birthday", "birthdate", "dob"}),
        (("date", "of", "birth"),),
    ),
    (
        "national id",
        frozenset(
            {"ssn", "passport", "nino", "nationalid", "taxid", "aadhaar", "bsn", "iban", "cpf"}
        ),
        (
            ("national", "id"),
            ("tax", "id"),
            ("social", "security"),
            ("id", "card"),
            ("driver", "license"),
            ("drivers", "license"),
            ("driving", "licence"),
        ),
    ),
    (
        "postal address",
        frozenset({"address", "street", "postcode", "zip", "zipcode", "postalcode", "addr"}),
        (("postal", "code"), ("house", "number")),
    ),
)
# Categories a number can hold; the others are text.
_NUMERIC_OK = frozenset({"phone number", "national id", "postal address", "IP address"})
_NUMERIC = re.compile(
    r"^((tiny|small|medium|big|huge|u)?int|integer|number|numeric|decimal|float|double|real)"
)
_TIME = re.compile(r"^(date|time|timestamp)")
_BOOLEAN = re.compile(r"^bool")
_INET = re.compile(r"^(inet|cidr)")

CLASSIFICATION_KEYS = frozenset(
    {
        "pii",
        "contains_pii",
        "personal_data",
        "personal",
        "gdpr",
        "sensitive",
        "sensitivity",
        "classification",
        "data_classification",
        "privacy",
        "confidential",
        "masking",
        "masking_policy",
        "policy_tag",
        "policy_tags",
    }
)
CLASSIFICATION_TAGS = frozenset(
    {"pii", "personal", "sensitive", "gdpr", "confidential", "non_pii", "not_pii", "no_pii"}
)


def words(name: str) -> list[str]:
    """``customerEmail_v2`` → ``['customer', 'email', 'v2']``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def category(name: str, data_type: str = "") -> str:
    """The kind of personal data `name` (of type `data_type`, "" when unknown) looks like,
    or ""."""
    kind = data_type.strip().lower()
    if _INET.match(kind):
        return "IP address"
    if _BOOLEAN.match(kind):
        return ""
    parts = words(name)
    joined = "".join(parts)
    for label, single, sequences in _CATEGORIES:
        found = any(w in single for w in parts) or joined in single
        if not found:
            found = any(
                tuple(parts[i : i + len(seq)]) == seq
                for seq in sequences
                for i in range(len(parts) - len(seq) + 1)
            )
        if not found:
            continue
        if _TIME.match(kind) and label != "birth date":
            return ""
        if _NUMERIC.match(kind) and label not in _NUMERIC_OK:
            return ""
        return label
    return ""


def classified(meta: Mapping[str, Any], tags: Iterable[str] = ()) -> bool:
    """Whether a column carries a privacy classification in `meta` or its tags."""
    if any(str(key).lower() in CLASSIFICATION_KEYS for key in meta):
        return True
    return any(tag.lower() in CLASSIFICATION_TAGS for tag in tags)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivacyFlag:
    """A new or renamed column that looks like personal data and carries no classification."""

    node: str  # unique id
    name: str  # the node's name
    column: str
    data_type: str
    category: str  # e-mail address, phone number, … (`category`)
    origin: str  # "added", "renamed from <old>", "new model", "new seed", …
    owners: tuple[str, ...] = ()  # whom to ask (the node's owners; none: the author)


def flag(
    *,
    node: str,
    name: str,
    column: str,
    data_type: str,
    origin: str,
    owners: tuple[str, ...],
    meta: Mapping[str, Any],
    tags: Iterable[str],
) -> PrivacyFlag | None:
    """The flag for one new or renamed column, or None when it does not look personal or is
    classified already."""
    found = category(column, data_type)
    if not found or classified(meta, tags):
        return None
    return PrivacyFlag(
        node=node,
        name=name,
        column=column,
        data_type=data_type,
        category=found,
        origin=origin,
        owners=owners,
    )
