"""One change between two dbt states, how it is classified, and who reads what changed.

A `Change` is one fact of the diff (``stg_orders.order_date`` renamed to ``ordered_on``),
with the evidence for it where it is inferred (renames), its `Classification` and the reason
for it, and, for what can break a reader, its `Impact`: the models, snapshots, tests and
exposures that read the changed column (found in their SQL, not merely downstream) and the
owners to tell. See docs/schema-review.md for the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What changed (the JSON's ``kind``)."""

    NODE_ADDED = "node_added"
    NODE_REMOVED = "node_removed"
    COLUMN_ADDED = "column_added"
    COLUMN_REMOVED = "column_removed"
    COLUMN_RENAMED = "column_renamed"
    TYPE_CHANGED = "type_changed"
    NULLABILITY_CHANGED = "nullability_changed"
    CONSTRAINT_ADDED = "constraint_added"
    CONSTRAINT_REMOVED = "constraint_removed"
    CONTRACT_CHANGED = "contract_changed"
    ACCESS_CHANGED = "access_changed"
    RELATION_CHANGED = "relation_changed"
    MATERIALIZATION_CHANGED = "materialization_changed"
    DESCRIPTION_CHANGED = "description_changed"
    OWNER_CHANGED = "owner_changed"
    META_CHANGED = "meta_changed"
    TAGS_CHANGED = "tags_changed"


class Classification(StrEnum):
    """How bad a change is for what reads it.

    - ``breaking``: something reads what changed — the listed models, snapshots, tests or
      exposures fail or change at their next build or view — or the node promised it to
      consumers pipebot cannot see (an enforced contract, ``access: public``);
    - ``partial-breaking``: it breaks whoever reads the changed column or relation, and nothing
      in the project does: only readers outside dbt (a notebook, a BI query on the table) can;
    - ``non-breaking``: nothing that reads the node can break (additions, wider types,
      documentation, owners, tags).
    """

    BREAKING = "breaking"
    PARTIAL = "partial-breaking"
    NON_BREAKING = "non-breaking"


# Most severe first: the order of lists and the worst of several.
SEVERITY = (Classification.BREAKING, Classification.PARTIAL, Classification.NON_BREAKING)


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Why a removed and an added column are taken for one renamed column."""

    kind: str  # "sql" (``old AS new`` in the SQL), "lineage", "position"
    detail: str  # human words, e.g. "`order_date AS ordered_on` in the SQL"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reader:
    """A node that reads what changed."""

    unique_id: str
    name: str
    resource_type: str  # model | snapshot | seed | test | exposure
    certainty: str  # "sure", or "maybe": `select *` over unknown columns, unreadable SQL, …
    via: str  # how it reads it, in words: "selects `order_date`", "depends on `fct_orders`"
    depth: int = 1  # 1: reads the changed node itself; 2: reads a reader; …
    columns: tuple[str, ...] = ()  # its own columns made from the changed one
    owners: tuple[str, ...] = ()
    url: str = ""  # exposures


@dataclass(frozen=True, slots=True, kw_only=True)
class Impact:
    """Who reads what changed, nearest first, and the owners to tell."""

    readers: tuple[Reader, ...] = ()
    owners: tuple[str, ...] = ()  # owners of the reading models and exposures
    # What kept the answer from being complete (SQL that could not be read, a cap reached).
    unknown: tuple[str, ...] = ()
    truncated: int = 0  # readers beyond the cap, not listed

    def of(self, resource_type: str) -> tuple[Reader, ...]:
        if resource_type == "model":
            return tuple(r for r in self.readers if r.resource_type in ("model", "snapshot"))
        return tuple(r for r in self.readers if r.resource_type == resource_type)

    @property
    def models(self) -> tuple[Reader, ...]:
        return self.of("model")

    @property
    def tests(self) -> tuple[Reader, ...]:
        return self.of("test")

    @property
    def exposures(self) -> tuple[Reader, ...]:
        return self.of("exposure")

    def __bool__(self) -> bool:
        return bool(self.readers) or self.truncated > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One difference between the base and the target state."""

    kind: Kind
    node: str  # unique id
    name: str  # the node's name ("source_name.table" for sources)
    resource_type: str  # model | seed | snapshot | source
    column: str = ""  # the column (for a rename: its old name)
    new_column: str = ""  # renames: the new name
    before: str = ""  # the old value, as text ("" when none)
    after: str = ""  # the new value
    shift: str = ""  # type changes: widening | narrowing | changed (`bot.review.datatype`)
    # Type changes the node's own code and YAML did not make: the warehouse type moved because
    # something upstream changed (`because`).
    knock_on: bool = False
    because: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    classification: Classification = Classification.NON_BREAKING
    reason: str = ""  # why that classification, in one sentence
    # What the node promised its consumers in the base: an enforced contract, public access.
    contracted: bool = False
    public: bool = False
    owners: tuple[str, ...] = ()  # owners of the changed node
    impact: Impact | None = None  # None: not a change a reader can feel

    @property
    def subject(self) -> str:
        """``stg_orders.order_date`` or ``stg_orders``."""
        return f"{self.name}.{self.column}" if self.column else self.name

    @property
    def breaking(self) -> bool:
        return self.classification is Classification.BREAKING
