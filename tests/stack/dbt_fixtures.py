"""pytest fixtures of the real dbt builds of the sample project (see dbt_stack.py).

``dbt_build`` builds ``tests/stack/dbt_project`` once per test session (≈10 s, plus ≈40 s the
very first time, when the cached dbt virtualenv is created) and yields a `DbtBuild`: the
``target/`` folder with manifest, run_results (of ``dbt build``), sources and catalog, the DuckDB
file dbt wrote, and per-step artifact snapshots.
"""

from __future__ import annotations

import pytest

from tests.stack.dbt_stack import DbtBuild, DbtHarnessError, build


@pytest.fixture(scope="session")
def dbt_build(tmp_path_factory: pytest.TempPathFactory) -> DbtBuild:
    dest = tmp_path_factory.mktemp("dbt_build")
    try:
        return build(dest)
    except DbtHarnessError as exc:
        pytest.fail(f"the real dbt build of the sample project failed: {exc}", pytrace=False)
