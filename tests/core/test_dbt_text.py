"""How dbt results are told: the cause of an error, what a run is, freshness not computed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.facts import NOT_COMPUTED, DbtResult, DbtRun, SourceFreshness
from bot.playbooks.dbt_text import (
    error_text,
    freshness_counts,
    freshness_line,
    message_gist,
    result_line,
)
from integrations.dbt._view import run_command

# A unit test that errors in DuckDB, as dbt words it: the database's cause is on line 4, after
# dbt's header and two generic hints.
BINDER = (
    "Runtime Error in unit_test stg_products_keeps_prices (models/staging/_staging.yml)\n"
    "  An error occurred during execution of unit test 'stg_products_keeps_prices'. There may "
    "be an error in the unit test definition: check the data types.\n"
    "   Runtime Error\n"
    '    Binder Error: Values list "products" does not have a column named "product_price"\n'
    "    \n"
    "    LINE 26:     product_price\n"
    "                 ^^^^^^^^^^^^^"
)
CAUSE = 'Binder Error: Values list "products" does not have a column named "product_price"'


def test_the_cause_line_is_told_not_dbts_hint() -> None:
    assert message_gist(BINDER) == CAUSE
    line = result_line(
        DbtResult(unique_id="unit_test.shop.stg_products.keeps", status="error", message=BINDER)
    )
    assert line.endswith(f"error: {CAUSE}")
    # The full text keeps the cause and what follows it, beyond three lines.
    full = error_text(BINDER)
    assert CAUSE in full and "LINE 26:" in full


@pytest.mark.parametrize(
    ("message", "gist"),
    [
        (
            "Runtime Error in model customer_ltv (models/marts/customer_ltv.sql)\n"
            '  Conversion Error: Could not convert string "N/A" to DECIMAL(18,2)\n  \n'
            "  LINE 15:     sum(cast(p.amount as decimal(18, 2))) as lifetime_value",
            'Conversion Error: Could not convert string "N/A" to DECIMAL(18,2)',
        ),
        (
            'Database Error in model x (models/x.sql)\n  column "amount" does not exist\n'
            "  LINE 3: select amount",
            'column "amount" does not exist',
        ),
        (
            "Database Error in model x (models/x.sql)\n  002003 (42S02): SQL compilation error:\n"
            "  Object 'DB.S.T' does not exist or not authorized.\n  compiled code at target/x.sql",
            "002003 (42S02): SQL compilation error: Object 'DB.S.T' does not exist or not "
            "authorized.",
        ),
        ("Got 1 result, configured to fail if != 0", "Got 1 result, configured to fail if != 0"),
        (
            "\n\n\x1b[32mactual\x1b[0m differs from expected:\n\n@@,a\r\n",
            "actual differs from expected",
        ),
        ("", ""),
    ],
)
def test_gist_of_dbt_messages(message: str, gist: str) -> None:
    assert message_gist(message) == gist


def test_error_text_is_bounded_but_keeps_the_cause() -> None:
    long = "Runtime Error in model m (m.sql)\n" + "\n".join(f"context {n}" for n in range(60))
    text = error_text(long + "\nBinder Error: the cause")
    assert text.splitlines()[0] == "Binder Error: the cause"  # put first: it was cut off
    assert text.endswith("…") and len(text.splitlines()) == 42
    assert "\x1b" not in error_text("\x1b[31mred\x1b[0m")


@pytest.mark.parametrize(
    ("args", "command"),
    [
        ({"which": "build"}, "build"),
        ({"which": "generate"}, "docs generate"),
        ({"which": "freshness"}, "source freshness"),
        ({"which": "compile", "invocation_command": "dbt compile -s x"}, "compile"),
        # No `which`: the command's words, never its options (--vars may hold secrets).
        ({"invocation_command": "dbt docs generate --vars '{pw: s3cret}'"}, "docs generate"),
        ({"invocation_command": "dbt run --select tag:nightly"}, "run"),
        ({}, ""),
    ],
)
def test_run_command(args: dict[str, str], command: str) -> None:
    assert run_command(args) == command


def _run(command: str, *results: DbtResult) -> DbtRun:
    return DbtRun(
        invocation_id="i", command=command, generated_at=None, elapsed_s=None, results=results
    )


def test_which_commands_built_or_tested() -> None:
    for command in ("build", "run", "test", "seed", "snapshot", "retry", "clone", "seed + build"):
        assert _run(command).executed, command
    for command in ("docs generate", "compile", "list", "ls", "parse", "show", "run-operation"):
        assert not _run(command).executed, command
    # Unknown command: a test reported as "success" was only compiled.
    compiled = DbtResult(unique_id="test.shop.not_null_x.1", status="success")
    assert not _run("", compiled).executed
    assert _run("", DbtResult(unique_id="test.shop.not_null_x.1", status="pass")).executed


def test_freshness_not_computed_is_told_with_why() -> None:
    now = datetime(2026, 11, 25, 6, tzinfo=UTC)
    products = SourceFreshness(
        unique_id="source.shop.raw.products",
        source_name="raw",
        table="products",
        status=NOT_COMPUTED,
        rule="warn after 1 day",
        reason="no loaded_at_field: dbt cannot measure it",
    )
    assert freshness_line(products, now) == (
        "`raw.products` — not computed (no loaded_at_field: dbt cannot measure it) "
        "(warn after 1 day)"
    )
    failed = SourceFreshness(
        unique_id="source.shop.raw.x",
        source_name="raw",
        table="x",
        status="runtime error",
        error="Database Error: permission denied",
        reason="runtime error: Database Error: permission denied",
    )
    assert "not computed (runtime error: Database Error: permission denied)" in freshness_line(
        failed, now
    )
    fresh = SourceFreshness(
        unique_id="source.shop.raw.o", source_name="raw", table="o", status="pass"
    )
    assert freshness_counts([fresh, products, failed]) == (
        "1 of 3 sources with freshness rules fresh, 2 not computed"
    )
