"""The schema review of a change (issue 15) on real dbt builds of the sample project: before
(`dbt_build`) and after a pull request's change set (`dbt_change`, `dbt_stack.CHANGE_SET`) —
a column dropped, one renamed, a type narrowed, a contract changed, a model removed and one
added — compared as two folders, as a dbt Cloud CI run against production (the fake dbt Cloud
through the real client), and from the command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.facts import StateRef
from bot.messages import Tone
from bot.playbooks import change_review, schema_review
from bot.ports import Sources
from bot.rendering import to_markdown, to_text
from bot.review.change import Change, Classification, Kind
from bot.review.document import SCHEMA, to_dict
from bot.review.github import LIMIT, MARKER, to_github
from bot.review.reply import to_reply
from bot.review.report import ChangeReview, Verdict, compare
from integrations.dbt.cloud import DbtCloudClient
from integrations.dbt.state import StateLoader
from tests.agent.support import ProgressLog
from tests.fakes.dbt_cloud import DAILY_JOB, FakeDbtCloud
from tests.playbooks.test_digest_and_schema_review import ask
from tests.shell import pipebot
from tests.stack.dbt_stack import DbtBuild

BREAKING, PARTIAL, NON = (
    Classification.BREAKING,
    Classification.PARTIAL,
    Classification.NON_BREAKING,
)


def folders(base: DbtBuild, target: DbtBuild) -> ChangeReview:
    loader = StateLoader()
    before, after = (
        StateRef(kind="dir", value=str(base.target_dir)),
        StateRef(kind="dir", value=str(target.target_dir)),
    )
    return compare(loader.state(before), loader.state(after), base_ref=before, target_ref=after)


@pytest.fixture(scope="module")
def review(dbt_build: DbtBuild, dbt_change: DbtBuild) -> ChangeReview:
    return folders(dbt_build, dbt_change)


def one(review: ChangeReview, kind: Kind, name: str, column: str = "") -> Change:
    found = [c for c in review.changes if (c.kind, c.name, c.column) == (kind, name, column)]
    assert len(found) == 1, (kind, name, column, [c.subject for c in review.changes])
    return found[0]


def names(change: Change, resource_type: str) -> set[str]:
    assert change.impact is not None
    return {r.name for r in change.impact.of(resource_type)}


# --- the diff and its classification ---------------------------------------------------------


def test_every_change_of_the_change_set_is_found_and_classified(review: ChangeReview) -> None:
    found = {
        (c.kind, c.name, c.column, c.new_column, c.before, c.after, c.classification)
        for c in review.changes
    }
    assert found == {
        # The contracted, public fct_orders: a column dropped and a type changed.
        (Kind.COLUMN_REMOVED, "fct_orders", "status", "", "VARCHAR", "", BREAKING),
        (Kind.TYPE_CHANGED, "fct_orders", "order_date", "", "DATE", "TIMESTAMP", BREAKING),
        (Kind.COLUMN_RENAMED, "stg_orders", "order_date", "ordered_on", "DATE", "DATE", BREAKING),
        (
            Kind.TYPE_CHANGED,
            "stg_orders",
            "amount",
            "",
            "DECIMAL(18,2)",
            "DECIMAL(10,2)",
            BREAKING,
        ),
        (
            Kind.NODE_REMOVED,
            "customer_ltv",
            "",
            "",
            'table "shop"."marts"."customer_ltv"',
            "",
            PARTIAL,
        ),
        (
            Kind.NODE_ADDED,
            "customer_contacts",
            "",
            "",
            "",
            'table "shop"."marts"."customer_contacts"',
            NON,
        ),
        # orders_daily's SQL did not change: its order_date follows fct_orders'.
        (Kind.TYPE_CHANGED, "orders_daily", "order_date", "", "DATE", "TIMESTAMP", NON),
        (
            Kind.DESCRIPTION_CHANGED,
            "orders_daily",
            "",
            "",
            "Orders and revenue per day, read by the revenue dashboard.",
            "Orders and revenue per UTC day, read by the revenue dashboard.",
            NON,
        ),
        (Kind.OWNER_CHANGED, "dim_customers", "", "", "lee@example.com", "@kim", NON),
        (Kind.TAGS_CHANGED, "stg_orders", "", "", "", "staging", NON),
        (Kind.MATERIALIZATION_CHANGED, "stg_payments", "", "", "view", "table", NON),
    }
    assert review.verdict is Verdict.BREAKING and review.exit_code == 1
    # Most severe first.
    ranks = [c.classification for c in review.changes]
    assert ranks == sorted(ranks, key=[BREAKING, PARTIAL, NON].index)


def test_types_are_told_as_narrowing_or_widening(review: ChangeReview) -> None:
    assert one(review, Kind.TYPE_CHANGED, "stg_orders", "amount").shift == "narrowing"
    widened = one(review, Kind.TYPE_CHANGED, "fct_orders", "order_date")
    assert widened.shift == "widening"
    # A wider type is no break by itself; the enforced contract promised this one.
    assert widened.contracted and widened.public


def test_the_rename_is_paired_with_its_evidence(review: ChangeReview) -> None:
    rename = one(review, Kind.COLUMN_RENAMED, "stg_orders", "order_date")
    evidence = {e.kind: e.detail for e in rename.evidence}
    assert evidence == {
        "sql": "`order_date AS ordered_on` in the target's SQL",
        "lineage": "both made from `raw.orders.order_date`",
        "position": "same position (3) and type (DATE)",
    }
    # Neither side of a rename is reported again as removed or added.
    assert not [
        c
        for c in review.changes
        if c.name == "stg_orders" and c.kind in (Kind.COLUMN_REMOVED, Kind.COLUMN_ADDED)
    ]


def test_the_knock_on_type_change_names_its_cause(review: ChangeReview) -> None:
    knock_on = one(review, Kind.TYPE_CHANGED, "orders_daily", "order_date")
    assert knock_on.knock_on and knock_on.because == ("fct_orders.order_date",)
    assert not one(review, Kind.TYPE_CHANGED, "fct_orders", "order_date").knock_on


def test_the_contracted_model_is_flagged(review: ChangeReview) -> None:
    assert {(c.name, c.column) for c in review.contracted} == {
        ("fct_orders", "status"),
        ("fct_orders", "order_date"),
    }


# --- who reads each changed column (and who does not) ----------------------------------------


def test_the_dropped_column_is_read_by_revenue_by_status_only(review: ChangeReview) -> None:
    dropped = one(review, Kind.COLUMN_REMOVED, "fct_orders", "status")
    assert names(dropped, "model") == {"revenue_by_status"}  # not orders_daily
    assert names(dropped, "exposure") == {"status_dashboard", "revenue_dashboard"}
    assert dropped.impact is not None
    how = {r.name: (r.certainty, r.depth) for r in dropped.impact.readers}
    # status_dashboard depends on revenue_by_status, which selects it; revenue_dashboard on
    # fct_orders itself, without saying which columns it shows.
    assert how["status_dashboard"] == ("sure", 2)
    assert how["revenue_dashboard"] == ("maybe", 1)
    assert names(dropped, "test") == set()


def test_the_retyped_contract_column_is_read_by_orders_daily_only(review: ChangeReview) -> None:
    retyped = one(review, Kind.TYPE_CHANGED, "fct_orders", "order_date")
    assert names(retyped, "model") == {"orders_daily"}  # not revenue_by_status
    assert names(retyped, "exposure") == {"revenue_dashboard"}  # not status_dashboard
    assert names(retyped, "test") == {
        "not_null_orders_daily_order_date",
        "unique_orders_daily_order_date",
    }


def test_the_renamed_column_is_read_by_the_model_that_did_not_follow(
    review: ChangeReview,
) -> None:
    renamed = one(review, Kind.COLUMN_RENAMED, "stg_orders", "order_date")
    # fct_orders reads the new name; dim_customers still selects the old one.
    assert names(renamed, "model") == {"dim_customers"}
    # Both dashboards are downstream of stg_orders; neither reads what dim_customers makes.
    assert names(renamed, "exposure") == set()
    assert renamed.impact is not None
    [reader] = renamed.impact.readers
    assert reader.via == "selects `stg_orders.order_date`"
    assert reader.columns == ("first_order_date",)
    assert renamed.impact.owners == ("@kim",)


def test_the_narrowed_column_is_traced_through_the_columns_made_from_it(
    review: ChangeReview,
) -> None:
    narrowed = one(review, Kind.TYPE_CHANGED, "stg_orders", "amount")
    assert names(narrowed, "model") == {"fct_orders", "orders_daily", "revenue_by_status"}
    assert "dim_customers" not in names(narrowed, "model")
    assert names(narrowed, "exposure") == {"revenue_dashboard", "status_dashboard"}
    assert names(narrowed, "test") == {
        "assert_fct_orders_amount_not_negative",
        "not_null_orders_daily_revenue",
    }
    assert narrowed.impact is not None
    depth = {r.name: r.depth for r in narrowed.impact.readers}
    assert (depth["fct_orders"], depth["orders_daily"], depth["not_null_orders_daily_revenue"]) == (
        1,
        2,
        3,
    )
    assert set(narrowed.impact.owners) == {"@dana", "finance-data@example.com", "sam@example.com"}


def test_owners_to_notify_are_the_readers_owners(review: ChangeReview) -> None:
    assert set(review.owners) == {"@dana", "finance-data@example.com", "sam@example.com", "@kim"}


def test_the_new_unclassified_personal_column_is_flagged(review: ChangeReview) -> None:
    # email is classified (`meta: {pii: true}`); full_name is not.
    assert [(f.name, f.column, f.category, f.origin, f.owners) for f in review.privacy] == [
        ("customer_contacts", "full_name", "person's name", "new model", ("@lee",))
    ]


def test_a_state_against_itself_is_safe(dbt_build: DbtBuild) -> None:
    same = folders(dbt_build, dbt_build)
    assert (same.verdict, same.exit_code, same.changes) == (Verdict.SAFE, 0, ())


# --- rendered --------------------------------------------------------------------------------


def test_the_reply_leads_with_the_verdict_and_the_readers(review: ChangeReview) -> None:
    reply = to_reply(review)
    assert reply.tone is Tone.ERROR
    assert reply.title == "Schema review of the change: breaking — 4 breaking changes"
    text = to_text(reply)
    assert (
        "• `stg_orders`: `order_date` renamed to `ordered_on` — read by model `dim_customers`"
        in text
    )
    assert "Evidence: `order_date AS ordered_on` in the target's SQL" in text
    assert "`customer_contacts.full_name` (VARCHAR) looks like a person's name" in text
    markdown = to_markdown(reply)
    assert "<details><summary>Details</summary>" in markdown


def test_the_pull_request_comment_and_the_json(review: ChangeReview) -> None:
    comment = to_github(review)
    assert comment.startswith(MARKER) and len(comment) <= LIMIT
    assert "## 🔴 pipebot schema review: breaking" in comment
    assert "| 🔴 Breaking | 4 |" in comment
    # Unmapped owners are shown, never pinged.
    assert "**Owners to notify:** `@dana`" in comment
    document = to_dict(review)
    assert document["schema"] == SCHEMA and document["exit_code"] == 1
    assert document["summary"] == {
        "changes": 11,
        "breaking": 4,
        "partial_breaking": 1,
        "non_breaking": 6,
        "privacy": 1,
        "contracted": 2,
    }
    json.dumps(document)  # JSON-native throughout


# --- dbt Cloud: a CI run against production --------------------------------------------------


@pytest.fixture
def cloud(dbt_build: DbtBuild) -> Iterator[FakeDbtCloud]:
    with FakeDbtCloud(build=dbt_build) as fake:
        yield fake
        assert fake.writes == [], "a write request reached the fake dbt Cloud"


def cloud_sources(fake: FakeDbtCloud) -> Sources:
    client = DbtCloudClient(
        base_url=fake.base_url, account_id=fake.account_id, token=fake.token, backoff=0.01
    )
    return Sources(dbt_states=StateLoader(cloud=client, production_job=DAILY_JOB))


def test_a_ci_run_is_reviewed_against_production_in_chat(
    cloud: FakeDbtCloud, dbt_change: DbtBuild, review: ChangeReview
) -> None:
    run = cloud.publish_ci_run(dbt_change)
    sources = cloud_sources(cloud)
    progress = ProgressLog()
    reply = schema_review.run(ask(sources, str(run.id), progress=progress))
    assert reply.title == "Schema review of the change: breaking — 4 breaking changes"
    text = to_text(reply)
    assert f"dbt Cloud run {run.id} (job 'CI checks')" in text
    assert f"production: dbt Cloud run {cloud.latest_run_id} (job 'Daily shop build')" in text
    # The same review as from the two folders.
    via_cloud = change_review.assess(
        sources, StateRef(kind="production"), StateRef(kind="run", value=str(run.id))
    )
    assert [(c.kind, c.subject, c.classification) for c in via_cloud.changes] == [
        (c.kind, c.subject, c.classification) for c in review.changes
    ]
    assert via_cloud.target is not None and via_cloud.target.run_id == run.id
    assert via_cloud.target.url.endswith(f"/runs/{run.id}/")


def test_two_runs_and_a_run_still_running(cloud: FakeDbtCloud, dbt_change: DbtBuild) -> None:
    ci = cloud.publish_ci_run(dbt_change)
    sources = cloud_sources(cloud)
    both = schema_review.run(ask(sources, str(cloud.latest_run_id), str(ci.id)))
    assert both.title.startswith("Schema review of the change: breaking")
    running = max(r.id for r in cloud.runs.values() if r.finished_at is None)
    reply = schema_review.run(ask(sources, str(running)))
    assert reply.title == (
        f"Cannot review the change: the target (dbt Cloud run {running}) could not be loaded: "
        f"dbt Cloud: run {running} is still running: review it when it finishes"
    )
    missing = change_review.assess(
        sources, StateRef(kind="production"), StateRef(kind="run", value="99999999")
    )
    assert missing.verdict is Verdict.CANNOT_REVIEW and missing.exit_code == 2


def test_run_ids_without_dbt_cloud_say_what_to_set(dbt_build: DbtBuild) -> None:
    sources = Sources(dbt_states=StateLoader())
    reply = schema_review.run(ask(sources, "4242"))
    assert reply.title.startswith("Cannot review the change:")
    assert "set PIPEBOT_DBT_CLOUD__ACCOUNT_ID and PIPEBOT_DBT_CLOUD__TOKEN" in reply.title


# --- the command line ------------------------------------------------------------------------


def test_the_ci_gate_exits_with_the_verdict(
    dbt_build: DbtBuild, dbt_change: DbtBuild, tmp_path: Path
) -> None:
    base, target = str(dbt_build.target_dir), str(dbt_change.target_dir)
    done = pipebot(
        ["schema-review", "--base", base, "--target", target, "--format", "json"], tmp_path
    )
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["verdict"] == "breaking" and document["summary"]["breaking"] == 4
    comment = pipebot(["schema-review", base, target, "--format", "github"], tmp_path)
    assert comment.returncode == 1 and comment.stdout.startswith(MARKER)
    selected = pipebot(
        ["schema-review", "--base", base, "--target", target, "--select", "stg_payments"],
        tmp_path,
    )
    assert selected.returncode == 0, selected.stdout
    assert "safe — 1 change, none breaking" in selected.stdout
    same = pipebot(["schema-review", "--base", base, "--target", base], tmp_path)
    assert same.returncode == 0 and "safe — no schema changes" in same.stdout


def test_the_command_line_says_what_is_wrong(dbt_build: DbtBuild, tmp_path: Path) -> None:
    base = str(dbt_build.target_dir)
    missing = pipebot(
        ["schema-review", "--base", base, "--target", str(tmp_path / "nope")], tmp_path
    )
    assert missing.returncode == 2
    assert f"dbt: no folder {tmp_path / 'nope'}: give a dbt target/ folder" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    no_manifest = pipebot(["schema-review", "--base", base, "--target", str(empty)], tmp_path)
    assert no_manifest.returncode == 2 and "no manifest.json in" in no_manifest.stderr
    # Without catalog.json no all-clear is given, even when nothing differs.
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy2(dbt_build.target_dir / "manifest.json", bare / "manifest.json")
    uncatalogued = pipebot(["schema-review", "--base", str(bare), "--target", str(bare)], tmp_path)
    assert uncatalogued.returncode == 2
    assert "Cannot review the change: catalog.json is missing" in uncatalogued.stdout
    cloud = pipebot(["schema-review", "--target-run", "4242"], tmp_path)
    assert cloud.returncode == 2 and "needs dbt Cloud" in cloud.stderr
    bad_select = pipebot(
        ["schema-review", "--base", base, "--target", base, "--select", "colour:red"], tmp_path
    )
    assert bad_select.returncode == 2
    assert "does not know the selector method `colour:`" in bad_select.stdout
    usage = pipebot(["schema-review", "--base", base], tmp_path)
    assert usage.returncode == 2
    assert "give the state to review: --target DIR or --target-run ID" in usage.stderr
    both = pipebot(["schema-review", "1", "2", "--target", base], tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr


def test_chat_words_are_told_apart() -> None:
    from bot.playbooks import default_commands

    assert not change_review.is_change(["fct_orders"])
    assert all(change_review.is_change(w) for w in (["4242"], ["./pr/target"], ["a", "b"]))
    production = StateRef(kind="production")
    assert change_review.refs(["4242"]) == (production, StateRef(kind="run", value="4242"))
    assert change_review.refs(["prod", "~/pr/target"]) == (
        production,
        StateRef(kind="dir", value="~/pr/target"),
    )
    assert change_review.refs(["fct_orders", "4242"]) == (
        "`fct_orders` is not a dbt Cloud run id, a folder (with a `/`) or `production`: use "
        "`schema-review <run-id> | schema-review <base> <target>`, or `schema-review <model>` "
        "for one model"
    )
    command = default_commands().get("schema-review")
    assert command is not None
    # A change needs no local dbt project; a model does.
    assert (command.needs(["4242"]), command.needs(["fct_orders"])) == ((), ("dbt",))
