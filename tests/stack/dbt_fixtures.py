"""pytest fixtures of the real dbt builds of the sample project (see dbt_stack.py).

``dbt_build`` builds ``tests/stack/dbt_project`` once per test session (≈10 s, plus ≈40 s the
very first time, when the cached dbt virtualenv is created) and yields a `DbtBuild`: the
``target/`` folder with manifest, run_results (of ``dbt build``), sources and catalog, the DuckDB
file dbt wrote, and per-step artifact snapshots.
"""

from __future__ import annotations

import pytest

from tests.stack.dbt_stack import DbtBuild, DbtHarnessError, build, changed, drift


@pytest.fixture(scope="session")
def dbt_build(tmp_path_factory: pytest.TempPathFactory) -> DbtBuild:
    dest = tmp_path_factory.mktemp("dbt_build")
    try:
        return build(dest)
    except DbtHarnessError as exc:
        pytest.fail(f"the real dbt build of the sample project failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def dbt_drift(dbt_build: DbtBuild, tmp_path_factory: pytest.TempPathFactory) -> DbtBuild:
    """`dbt_build` after a hurried change (see `drift`): ``stg_customers`` lost ``email`` and
    renamed ``country`` to ``country_code`` (``dim_customers`` selects both), and
    ``stg_orders.loaded_at`` became varchar; only ``dbt run -s`` ran since, so catalog.json
    (from the build) is older than the warehouse and run_results."""
    try:
        return drift(dbt_build, tmp_path_factory.mktemp("dbt_drift"))
    except DbtHarnessError as exc:
        pytest.fail(f"the dbt drift scenario failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def dbt_change(dbt_build: DbtBuild, tmp_path_factory: pytest.TempPathFactory) -> DbtBuild:
    """The sample project after a pull request's change set (`dbt_stack.CHANGE_SET`: a column
    dropped, one renamed, a type narrowed, a contract changed, a model removed and one added),
    built with dbt-core on a copy of `dbt_build`'s warehouse: the target of a change review
    whose base is `dbt_build`."""
    try:
        return changed(dbt_build, tmp_path_factory.mktemp("dbt_change"))
    except DbtHarnessError as exc:
        pytest.fail(f"the dbt build of the change set failed: {exc}", pytrace=False)
