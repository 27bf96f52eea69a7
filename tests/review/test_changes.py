"""The diff, the readers and the classification of changes the sample build does not make:
sources, seeds and snapshots; nullability, constraints, contracts, access, relations;
missing catalogs; readers through `select *`; the trace's cap."""

from __future__ import annotations

from bot.facts import StateColumn
from bot.review.change import Change, Classification, Kind
from bot.review.impact import MAX_READERS
from bot.review.report import ChangeReview, Verdict
from tests.review.support import data_test, exposure, node, rel, review, state

BREAKING, PARTIAL, NON = (
    Classification.BREAKING,
    Classification.PARTIAL,
    Classification.NON_BREAKING,
)
COLUMNS = {"id": "INTEGER", "email": "VARCHAR", "amount": "DECIMAL(18,2)"}


def changes(result: ChangeReview) -> set[tuple[Kind, str, str, Classification]]:
    return {(c.kind, c.name, c.column, c.classification) for c in result.changes}


def only(result: ChangeReview, kind: Kind) -> Change:
    [found] = [c for c in result.changes if c.kind is kind]
    return found


def reader_names(change: Change) -> set[str]:
    assert change.impact is not None
    return {r.name for r in change.impact.readers}


def test_sources_seeds_and_snapshots_come_and_go() -> None:
    base = state(
        node("raw.orders", COLUMNS, resource_type="source", schema="raw"),
        node("countries", {"code": "VARCHAR"}, resource_type="seed"),
        node("orders_snapshot", COLUMNS, resource_type="snapshot", sql="select 1"),
    )
    target = state(
        node("raw.orders", COLUMNS, resource_type="source", schema="raw"),
        node("raw.refunds", {"id": "INTEGER"}, resource_type="source", schema="raw"),
        node("currencies", {"code": "VARCHAR"}, resource_type="seed"),
    )
    assert changes(review(base, target)) == {
        (Kind.NODE_ADDED, "raw.refunds", "", NON),
        (Kind.NODE_ADDED, "currencies", "", NON),
        (Kind.NODE_REMOVED, "countries", "", PARTIAL),
        (Kind.NODE_REMOVED, "orders_snapshot", "", PARTIAL),
    }


def test_a_seed_column_renamed_is_paired_by_position_type_and_name() -> None:
    before = [StateColumn(name="country", position=1, data_type="VARCHAR")]
    base = state(node("countries", before, resource_type="seed"))
    renamed = state(
        node(
            "countries",
            [StateColumn(name="country_code", position=1, data_type="VARCHAR")],
            resource_type="seed",
        )
    )
    change = only(review(base, renamed), Kind.COLUMN_RENAMED)
    assert (change.column, change.new_column) == ("country", "country_code")
    assert [e.kind for e in change.evidence] == ["position"]
    # Another name in the same place is another column: removed and added.
    other = state(
        node(
            "countries",
            [StateColumn(name="iso", position=1, data_type="VARCHAR")],
            resource_type="seed",
        )
    )
    assert {c.kind for c in review(base, other).changes} == {Kind.COLUMN_REMOVED, Kind.COLUMN_ADDED}


def test_a_removed_column_nobody_reads_is_partial_and_safe() -> None:
    reader = node(
        "report", {"id": "INTEGER"}, sql=f"select id from {rel('orders')}", parents=["orders"]
    )
    base = state(node("orders", COLUMNS), reader)
    target = state(node("orders", {"id": "INTEGER", "amount": "DECIMAL(18,2)"}), reader)
    result = review(base, target)
    removed = only(result, Kind.COLUMN_REMOVED)
    assert removed.classification is PARTIAL and reader_names(removed) == set()
    assert removed.reason.endswith("nothing in the project reads it, readers outside dbt may")
    assert (result.verdict, result.exit_code) == (Verdict.SAFE, 0)


def test_a_star_reader_passes_a_removed_column_on_to_its_readers() -> None:
    base_orders = node("orders", COLUMNS)
    passthrough = node(
        "orders_copy", COLUMNS, sql=f"select * from {rel('orders')}", parents=["orders"]
    )
    mailer = node(
        "mailer",
        {"email": "VARCHAR"},
        sql=f"select email from {rel('orders_copy')}",
        parents=["orders_copy"],
    )
    bystander = node(
        "totals",
        {"amount": "DECIMAL(18,2)"},
        sql=f"select sum(amount) as amount from {rel('orders_copy')}",
        parents=["orders_copy"],
    )
    dashboard = exposure("mail_dashboard", "mailer", owners=("ops@example.com",))
    unrelated = exposure("totals_dashboard", "totals")
    base = state(base_orders, passthrough, mailer, bystander, exposures=[dashboard, unrelated])
    target = state(
        node("orders", {"id": "INTEGER", "amount": "DECIMAL(18,2)"}),
        passthrough,
        mailer,
        bystander,
        exposures=[dashboard, unrelated],
    )
    removed = only(review(base, target), Kind.COLUMN_REMOVED)
    assert removed.classification is BREAKING
    assert reader_names(removed) == {"orders_copy", "mailer", "mail_dashboard"}
    assert removed.impact is not None and removed.impact.owners == ("ops@example.com",)


def test_nullability_and_constraints() -> None:
    def orders(*, not_null: bool, unique: bool, contract: bool = False) -> object:
        return node(
            "orders",
            [
                StateColumn(
                    name="id",
                    position=1,
                    data_type="INTEGER",
                    declared=True,
                    constraints=(("not_null",) if not_null else ())
                    + (("unique",) if unique else ()),
                )
            ],
            contract_enforced=contract,
        )

    reader = node(
        "report", {"id": "INTEGER"}, sql=f"select id from {rel('orders')}", parents=["orders"]
    )
    loosened = review(
        state(orders(not_null=True, unique=True), reader),
        state(orders(not_null=False, unique=False), reader),
    )
    assert changes(loosened) == {
        (Kind.NULLABILITY_CHANGED, "orders", "id", BREAKING),  # report reads it
        (Kind.CONSTRAINT_REMOVED, "orders", "id", PARTIAL),
    }
    tightened = review(
        state(orders(not_null=False, unique=False), reader),
        state(orders(not_null=True, unique=True), reader),
    )
    assert changes(tightened) == {
        (Kind.NULLABILITY_CHANGED, "orders", "id", NON),
        (Kind.CONSTRAINT_ADDED, "orders", "id", NON),
    }
    contracted = review(
        state(orders(not_null=True, unique=True, contract=True)),
        state(orders(not_null=True, unique=False, contract=True)),
    )
    assert changes(contracted) == {(Kind.CONSTRAINT_REMOVED, "orders", "id", BREAKING)}


def test_contracts_access_and_materialization() -> None:
    base = state(
        node("orders", COLUMNS, contract_enforced=True, access="public"), node("stats", COLUMNS)
    )
    target = state(
        node("orders", COLUMNS, contract_enforced=False, access="protected"),
        node("stats", COLUMNS, contract_enforced=True, materialized="ephemeral"),
    )
    assert changes(review(base, target)) == {
        (Kind.CONTRACT_CHANGED, "orders", "", BREAKING),  # a public model's contract
        (Kind.ACCESS_CHANGED, "orders", "", BREAKING),  # public → protected
        (Kind.CONTRACT_CHANGED, "stats", "", NON),
        (Kind.MATERIALIZATION_CHANGED, "stats", "", PARTIAL),  # no longer in the warehouse
    }


def test_a_renamed_table_breaks_the_dashboards_on_it_and_a_ci_schema_is_no_change() -> None:
    base = state(node("orders", COLUMNS), exposures=[exposure("board", "orders")])
    moved = node("orders", COLUMNS)._replace(relation=rel("orders_v2"))
    renamed = review(base, state(moved, exposures=[exposure("board", "orders")]))
    change = only(renamed, Kind.RELATION_CHANGED)
    assert change.classification is BREAKING and reader_names(change) == {"board"}
    ci = node("orders", COLUMNS, schema="dbt_cloud_pr_1002_151")
    assert review(base, state(ci, exposures=[exposure("board", "orders")])).changes == ()


def test_meta_tags_and_descriptions_of_columns() -> None:
    def orders(meta: dict[str, object], description: str) -> object:
        column = StateColumn(
            name="email",
            position=1,
            data_type="VARCHAR",
            declared=True,
            meta=meta,
            description=description,
        )
        return node("orders", [column], meta={"owner": "@dana", "tier": 1})

    result = review(
        state(orders({}, "Contact e-mail.")), state(orders({"pii": True}, "Contact address."))
    )
    meta = only(result, Kind.META_CHANGED)
    assert (meta.column, meta.before, meta.after) == ("email", "{}", '{"pii": true}')
    assert only(result, Kind.DESCRIPTION_CHANGED).column == "email"
    assert result.verdict is Verdict.SAFE


def test_without_a_catalog_only_declared_columns_and_no_all_clear() -> None:
    declared = [StateColumn(name="id", declared=True, declared_type="integer")]
    bare = node("orders", declared, in_catalog=False)
    result = review(state(bare, catalog=False), state(bare, catalog=False))
    assert result.changes == () and (result.verdict, result.exit_code) == (Verdict.CANNOT_REVIEW, 2)
    assert result.reason == "catalog.json is missing, so no all-clear can be given"
    # Something breaking is still reported as such.
    reader = node(
        "report", {"id": "INTEGER"}, sql=f"select id from {rel('orders')}", parents=["orders"]
    )
    gone = node("orders", [StateColumn(name="other", declared=True)], in_catalog=False)
    broken = review(state(bare, reader, catalog=False), state(gone, reader, catalog=False))
    assert broken.verdict is Verdict.BREAKING
    assert {(c.kind, c.column) for c in broken.changes} == {
        (Kind.COLUMN_REMOVED, "id"),
        (Kind.COLUMN_ADDED, "other"),
    }


def test_tests_and_singular_tests_read_columns() -> None:
    orders = node("orders", COLUMNS)
    tests = [
        data_test("not_null_orders_amount", "orders", "amount"),
        data_test("not_null_orders_id", "orders", "id"),
        data_test(
            "assert_positive",
            "orders",
            kind="singular",
            sql=f"select * from {rel('orders')} where amount < 0",
        ),
    ]
    target = node("orders", {**COLUMNS, "amount": "DECIMAL(10,2)"})
    narrowed = only(
        review(state(orders, tests=tests), state(target, tests=tests)), Kind.TYPE_CHANGED
    )
    assert reader_names(narrowed) == {"not_null_orders_amount", "assert_positive"}


def test_the_trace_stops_after_its_cap_and_says_so() -> None:
    chain = [node("m0", {"x": "INTEGER"})]
    for i in range(1, MAX_READERS + 20):
        chain.append(
            node(
                f"m{i}",
                {"x": "INTEGER"},
                sql=f"select x from {rel(f'm{i - 1}')}",
                parents=[f"m{i - 1}"],
            )
        )
    base = state(*chain)
    target = state(node("m0", {"x": "BIGINT"}), *chain[1:])
    # A chain deeper than the hop limit stops there first.
    retyped = only(review(base, target), Kind.TYPE_CHANGED)
    assert retyped.impact is not None and len(retyped.impact.readers) == 10
    assert retyped.impact.unknown == ("followed 10 models downstream and stopped there",)
    wide = [
        node(f"w{i}", {"x": "INTEGER"}, sql=f"select x from {rel('m0')}", parents=["m0"])
        for i in range(MAX_READERS + 5)
    ]
    fan = only(
        review(state(chain[0], *wide), state(node("m0", {"x": "BIGINT"}), *wide)), Kind.TYPE_CHANGED
    )
    assert fan.impact is not None and len(fan.impact.readers) == MAX_READERS
    assert fan.impact.unknown[0].startswith(f"more than {MAX_READERS} nodes read it")


def test_select_limits_the_changes_not_the_readers() -> None:
    reader = node(
        "report", {"id": "INTEGER"}, sql=f"select id from {rel('orders')}", parents=["orders"]
    )
    base = state(node("orders", COLUMNS), node("other", COLUMNS), reader)
    target = state(node("orders", {"id": "BIGINT"}), node("other", {"id": "INTEGER"}), reader)
    result = review(base, target, selected=frozenset({"model.shop.orders"}), select="orders")
    assert {c.name for c in result.changes} == {"orders"}
    assert any(r.name == "report" for c in result.changes if c.impact for r in c.impact.readers)
