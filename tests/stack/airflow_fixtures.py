"""pytest fixtures of the real Airflow stacks: Airflow 3 (airflow_stack.py) and Airflow 2
(airflow2.py).

``airflow_stack`` (Airflow 3) and ``airflow2_stack`` (Airflow 2), both session scope, start
Airflow once, trigger each sample DAG once, then — once the first ``shop_ingest`` run has
finished — trigger ``shop_ingest`` again for an *earlier* logical date (the run that ran last
but is dated first), wait until every run has finished and the broken DAG file is listed as an
import error, and yield an `AirflowEnv`. ``any_airflow`` is the same, parametrized over both
versions: a test that takes it runs against Airflow 3 and Airflow 2 and must find the same
facts on both.

Every stack the session needs is started, each in its own thread, as soon as the first test
that needs one is set up: Airflow 2 then comes up while the Airflow 3 tests run (and the
other way round), and neither slows the unit tests before them, some of which time their
answers. The fixture only waits for its stack. Teardown stops every process (also on
``pytest -x`` and on failures) and removes the temporary AIRFLOW_HOME; the terminal summary
reports how long each stack took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import pytest

from tests.stack.airflow2 import Airflow2Stack
from tests.stack.airflow_stack import AirflowStack, StackError

SAMPLE_DAGS = {"shop_ingest": "success", "orders_daily": "failed", "payments_sync": "success"}
# The late run of shop_ingest: triggered after the first one finished, dated long before it.
LATE_DAG = "shop_ingest"
LATE_LOGICAL_DATE = "2026-01-05T00:00:00+00:00"
STACKS: dict[str, type[AirflowStack]] = {"airflow3": AirflowStack, "airflow2": Airflow2Stack}
# Which stacks a test needs, by the fixtures it uses.
FIXTURES: dict[str, tuple[str, ...]] = {
    "airflow_stack": ("airflow3",),
    "airflow2_stack": ("airflow2",),
    "any_airflow": ("airflow3", "airflow2"),
}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class AirflowEnv:
    base_url: str
    admin: Credentials
    viewer: Credentials
    run_ids: Mapping[str, str]  # sample dag_id → the run id the fixture triggered first
    stack: AirflowStack
    ready_s: float  # start → every sample run finished
    late_run_id: str = ""  # shop_ingest's last run, dated LATE_LOGICAL_DATE
    version: str = ""  # "3.3.2", "2.10.5"
    api: str = ""  # "v2" (Airflow 3) or "v1" (Airflow 2)
    venv_s: float = 0.0  # of ready_s: making sure the venv exists (≈0 when cached)
    servers_s: float = 0.0  # of ready_s: set-up and servers healthy


def bring_up(kind: str) -> AirflowEnv:
    """Start one stack and its sample runs; on any failure stop it and raise StackError."""
    started = time.monotonic()
    stack = STACKS[kind]()
    try:
        stack.start()
        servers_s = time.monotonic() - started
        run_ids = {dag_id: stack.trigger(dag_id) for dag_id in SAMPLE_DAGS}
        states = {LATE_DAG: stack.wait(LATE_DAG, run_ids[LATE_DAG])}
        late_run_id = stack.trigger(LATE_DAG, logical_date=LATE_LOGICAL_DATE)
        for dag_id in SAMPLE_DAGS:
            states[dag_id] = states.get(dag_id) or stack.wait(dag_id, run_ids[dag_id])
        states["late"] = stack.wait(LATE_DAG, late_run_id)
        for dag_id, expected in {**SAMPLE_DAGS, "late": "success"}.items():
            if states[dag_id] != expected:
                run_id = late_run_id if dag_id == "late" else run_ids[dag_id]
                dag = LATE_DAG if dag_id == "late" else dag_id
                tasks = stack.task_states(dag, run_id)
                raise StackError(
                    f"{dag} {run_id} ended {states[dag_id]}, expected {expected}; tasks: {tasks}"
                )
        stack.wait_for_import_errors(1)
    except BaseException as exc:
        tails = stack.log_tails()
        stack.stop()
        stack.remove_home()
        if isinstance(exc, Exception):
            raise StackError(f"Airflow {stack.version} stack failed: {exc}\n{tails}") from exc
        raise
    api = "v2" if stack.api_root.endswith("v2") else "v1"
    return AirflowEnv(
        base_url=stack.base_url,
        admin=Credentials("admin", "admin"),
        viewer=Credentials("viewer", "viewer"),
        run_ids=run_ids,
        stack=stack,
        ready_s=time.monotonic() - started,
        late_run_id=late_run_id,
        version=stack.version,
        api=api,
        venv_s=stack.venv_s or 0.0,
        servers_s=servers_s,
    )


class _Starts:
    """The stacks this session needs, each brought up once, early, in its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, Future[AirflowEnv]] = {}
        self.timings: list[str] = []

    def begin(self, kind: str) -> Future[AirflowEnv]:
        with self._lock:
            if kind not in self._futures:
                future: Future[AirflowEnv] = Future()
                self._futures[kind] = future

                def run() -> None:
                    try:
                        future.set_result(bring_up(kind))
                    except BaseException as exc:  # handed to the fixture that waits for it
                        future.set_exception(exc)

                threading.Thread(target=run, name=f"start-{kind}", daemon=True).start()
            return self._futures[kind]

    def stop_all(self) -> None:
        """Stop stacks that were started but whose fixture never ran (e.g. after -x)."""
        with self._lock:
            futures = dict(self._futures)
        for future in futures.values():
            try:
                env = future.result(timeout=600)
            except BaseException:  # its failure was reported by the fixture that waited for it
                continue
            env.stack.stop()
            env.stack.remove_home()


_STARTS = _Starts()
_NEEDED: set[str] = set()  # the stacks the collected tests use


def _kinds(item: pytest.Item) -> set[str]:
    return {kind for name in getattr(item, "fixturenames", ()) for kind in FIXTURES.get(name, ())}


def pytest_collection_finish(session: pytest.Session) -> None:
    _NEEDED.update(kind for item in session.items for kind in _kinds(item))


@pytest.hookimpl(tryfirst=True)  # before the fixtures of `item` wait for their stack
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _kinds(item):
        for kind in sorted(_NEEDED, reverse=True):  # Airflow 3 first: most tests use it
            _STARTS.begin(kind)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _STARTS.stop_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _STARTS.timings:
        terminalreporter.write_line(line)


def _session_env(kind: str) -> Iterator[AirflowEnv]:
    try:
        env = _STARTS.begin(kind).result(timeout=900)
    except StackError as exc:
        pytest.fail(str(exc), pytrace=False)
    _STARTS.timings.append(
        f"Airflow {env.version} harness ready in {env.ready_s:.1f} s: venv {env.venv_s:.1f} s"
        f" ({'built' if env.stack.venv_built else 'cached'}), set-up and servers "
        f"{env.servers_s - env.venv_s:.1f} s, sample runs {env.ready_s - env.servers_s:.1f} s"
    )
    try:
        yield env
    finally:
        env.stack.stop()
        leftovers = env.stack.stragglers()
        env.stack.remove_home()
        if leftovers:
            pytest.fail(f"Airflow processes left behind: {leftovers}", pytrace=False)


@pytest.fixture(scope="session")
def airflow_stack() -> Iterator[AirflowEnv]:
    """Airflow 3 (3.3.2), API v2."""
    yield from _session_env("airflow3")


@pytest.fixture(scope="session")
def airflow2_stack() -> Iterator[AirflowEnv]:
    """Airflow 2 (2.10.5), API v1."""
    yield from _session_env("airflow2")


@pytest.fixture(scope="session", params=["airflow3", "airflow2"])
def any_airflow(request: pytest.FixtureRequest) -> AirflowEnv:
    """Each version in turn: the same tests, the same expected facts."""
    name = "airflow_stack" if request.param == "airflow3" else "airflow2_stack"
    env: AirflowEnv = request.getfixturevalue(name)
    return env
