"""A real Airflow 3 (3.3.2) for integration tests and demo recordings.

    stack = AirflowStack()
    stack.start()                      # venv (cached) → fresh AIRFLOW_HOME → migrate → 3 servers
    run_id = stack.trigger("shop_ingest")
    stack.wait("shop_ingest", run_id)  # → "success"
    stack.stop()                       # SIGTERM each process group, SIGKILL what is left

Airflow runs from its own virtualenv, created once under ``.cache/venvs/airflow-3.3.2`` and
guarded by a file lock so parallel test runs do not race to build it; the bot's own venv never
gets Airflow's dependency set. Every session gets a fresh ``AIRFLOW_HOME`` holding the
SQLite database, the sample DAGs, the passwords file, task logs and one log file per server
process (``server-*.log``), whose tail is printed when something fails.

The configuration is the measured recipe of the shared local-stacks notes: LocalExecutor on
SQLite, parallelism 2 (the default 32 pre-forks ~4 GB of workers), DAGs unpaused at creation,
a 5 s DAG-folder refresh, no scheduled runs (only triggered ones), simple auth manager users
``admin`` (role admin) and ``viewer`` (role viewer), fixed JWT/secret keys shared by all
processes and free ports.

`AirflowStack` is written so that a second harness (Airflow 2, ``airflow2.py``) changes only
what differs: the version and its venv, the server processes, the environment, the set-up
commands before the servers start, the API root and how the harness authenticates.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

AIRFLOW_VERSION = "3.3.2"
REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_DIR = REPO_ROOT / ".cache" / "venvs" / f"airflow-{AIRFLOW_VERSION}"
DAGS_DIR = Path(__file__).resolve().parent / "dags"
SERVERS = ("api-server", "scheduler", "dag-processor")
USERS = {"admin": "admin", "viewer": "viewer"}  # user → role; passwords are the user names
JWT_SECRET = "pipebot-test-jwt-secret-not-for-production"
FINISHED = frozenset({"success", "failed"})


class StackError(RuntimeError):
    """The Airflow stack could not be built, started or driven."""


def ensure_venv(
    venv: Path = VENV_DIR, requirements: tuple[str, ...] = (f"apache-airflow=={AIRFLOW_VERSION}",)
) -> Path:
    """The Airflow virtualenv, built once; returns the path of its ``airflow`` executable."""
    marker = venv / ".pipebot-ready"
    airflow = venv / "bin" / "airflow"
    if marker.exists():
        return airflow
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        # A second test run waits here while the first one installs, then finds the marker.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return airflow
        shutil.rmtree(venv, ignore_errors=True)  # a half-built venv from an interrupted run
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
        _run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *requirements,
            ],
            timeout=900,
        )
        marker.write_text(
            f"{' '.join(requirements)} installed in {time.monotonic() - started:.0f} s\n"
        )
    return airflow


def _run(command: list[str], *, timeout: float, env: Mapping[str, str] | None = None) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise StackError(f"{' '.join(command[:3])} … failed ({done.returncode}):\n{tail}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class AirflowStack:
    """One Airflow 3 deployment: api-server, scheduler and dag-processor on free ports."""

    version = AIRFLOW_VERSION
    api_root = "/api/v2"
    servers: tuple[str, ...] = SERVERS
    health_path = "/api/v2/monitor/health"

    def __init__(self, *, dags_dir: Path = DAGS_DIR, venv: Path | None = None) -> None:
        self.dags_dir = dags_dir
        self.venv = venv or REPO_ROOT / ".cache" / "venvs" / f"airflow-{self.version}"
        self.home = Path(tempfile.mkdtemp(prefix=f"pipebot-airflow-{self.version}-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self._tokens: dict[str, str] = {}
        self.started_s: float | None = None
        self.venv_s: float | None = None  # time spent making sure the venv exists
        self.venv_built = False  # whether this start had to build it

    def requirements(self) -> tuple[str, ...]:
        return (f"apache-airflow=={self.version}",)

    # -- lifecycle ----------------------------------------------------------------------

    def common_env(self) -> dict[str, str]:
        """What every Airflow process of either version gets.

        Built from scratch rather than copied from ours, so no stray ``AIRFLOW__*`` variable
        of the developer's shell changes the stack.
        """
        home = str(self.home)
        return {
            "PATH": f"{self.venv / 'bin'}:{os.defpath}",  # the executor runs `airflow tasks run`
            "HOME": home,
            "LANG": "C.UTF-8",
            "TMPDIR": tempfile.gettempdir(),
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": f"{home}/dags",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            # The sample DAGs are @daily but only the runs the tests trigger should exist:
            # no surprise scheduled run competing for the worker slots.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }

    def env(self) -> dict[str, str]:
        """The complete environment of every Airflow 3 process."""
        home = str(self.home)
        return {
            **self.common_env(),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{user}:{role}" for user, role in USERS.items()
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": f"{home}/passwords.json",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__API__SECRET_KEY": "pipebot-test-secret-key",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        }

    def prepare(self, airflow: Path, env: Mapping[str, str]) -> None:
        """What runs before the servers start: users and the metadata database."""
        # Written before any process starts: the simple auth manager keeps a pre-written file.
        (self.home / "passwords.json").write_text(json.dumps(dict(zip(USERS, USERS, strict=True))))
        _run([str(airflow), "db", "migrate"], timeout=180, env=env)

    def start(self, *, timeout: float = 120.0) -> None:
        started = time.monotonic()
        self.venv_built = not (self.venv / ".pipebot-ready").exists()
        airflow = ensure_venv(self.venv, self.requirements())
        self.venv_s = time.monotonic() - started
        shutil.copytree(self.dags_dir, self.home / "dags", ignore=shutil.ignore_patterns("__*"))
        env = self.env()
        self.prepare(airflow, env)
        atexit.register(self.stop)
        for name in self.servers:
            log = open(self.home / f"server-{name}.log", "wb")  # noqa: SIM115 - closed in stop()
            self._logs.append(log)
            self._processes[name] = subprocess.Popen(
                [str(airflow), name],
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: stop() signals workers too
            )
        try:
            # From the servers' start: building the venv and migrating (minutes on a fresh
            # clone of a loaded machine) must not use up the time they get to come up.
            self._wait_healthy(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - started

    def _wait_healthy(self, deadline: float) -> None:
        last = "no answer yet"
        while time.monotonic() < deadline:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise StackError(
                        f"airflow {name} exited with {process.returncode}\n{self.log_tails()}"
                    )
            try:
                health = requests.get(f"{self.base_url}{self.health_path}", timeout=2).json()
            except (requests.RequestException, ValueError) as exc:
                last = exc.__class__.__name__
            else:
                last = json.dumps(health)
                # The dag-processor is not awaited here: trigger() waits for each DAG instead.
                if (
                    health.get("metadatabase", {}).get("status") == "healthy"
                    and health.get("scheduler", {}).get("status") == "healthy"
                ):
                    return
            time.sleep(0.5)
        raise StackError(f"Airflow did not become healthy ({last})\n{self.log_tails()}")

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL what is still there after 10 s. Idempotent."""
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self._processes.values():
            # The group outlives its leader when a worker lingers: kill it either way.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        for pid in self.stragglers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def stragglers(self) -> list[int]:
        """Live processes started for this stack (found by their AIRFLOW_HOME), if any."""
        needle = f"AIRFLOW_HOME={self.home}\0".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Zombies are already dead; their parent (us) reaps them.
            if needle in environ and stat.rsplit(")", 1)[-1].split()[0] != "Z":
                found.append(int(entry.name))
        return found

    def remove_home(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for name in self.servers:
            path = self.home / f"server-{name}.log"
            parts.append(f"--- {path} (last {lines} lines) ---\n{_tail(path, lines)}")
        return "\n".join(parts)

    # -- driving it (as admin, with plain requests: the harness may write, pipebot may not) --

    def auth(self, username: str = "admin") -> dict[str, str]:
        """The harness's own credentials for `username` (Airflow 3: a JWT)."""
        return {"Authorization": f"Bearer {self.token(username)}"}

    def token(self, username: str = "admin") -> str:
        if username not in self._tokens:
            for _ in range(3):
                answer = requests.post(
                    f"{self.base_url}/auth/token",
                    json={"username": username, "password": username},
                    timeout=10,
                )
                if answer.status_code < 500:
                    break
                time.sleep(1)
            if answer.status_code != 201:
                raise StackError(f"POST /auth/token as {username}: {answer.status_code}")
            self._tokens[username] = str(answer.json()["access_token"])
        return self._tokens[username]

    def api(self, method: str, path: str, *, user: str = "admin", **kwargs: Any) -> Any:
        # SQLite under a loaded machine answers the odd 5xx ("database is locked"): reads are
        # retried; the trigger POST is not, so a run is never created twice.
        attempts = 4 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                answer = requests.request(
                    method,
                    f"{self.base_url}{self.api_root}{path}",
                    headers=self.auth(user),
                    timeout=10,
                    **kwargs,
                )
            except requests.RequestException as exc:
                if attempt == attempts:
                    raise StackError(
                        f"{method} {self.api_root}{path}: {exc.__class__.__name__}"
                    ) from exc
            else:
                if answer.status_code < 500 or attempt == attempts:
                    break
            time.sleep(1)
        if answer.status_code >= 400:
            raise StackError(
                f"{method} {self.api_root}{path}: {answer.status_code} {answer.text[:300]}"
            )
        return answer.json()

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return {t["task_id"]: t["state"] for t in self.api("GET", path)["task_instances"]}

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> None:
        """Wait until the dag-processor has parsed `dag_id` (new files take a few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(requests.RequestException):
                answer = requests.get(
                    f"{self.base_url}{self.api_root}/dags/{quote(dag_id, safe='')}",
                    headers=self.auth(),
                    timeout=10,
                )
                if answer.status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise StackError(f"DAG {dag_id} was never parsed\n{self.log_tails()}")
            time.sleep(0.5)

    def trigger(self, dag_id: str, logical_date: str | None = None) -> str:
        """A manual run now; `logical_date` (ISO 8601) dates it earlier, as a re-run of a
        past interval is dated, though it runs now."""
        self.wait_for_dag(dag_id)
        run = self.api(
            "POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json={"logical_date": logical_date}
        )
        return str(run["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 90.0) -> str:
        """Poll the run by id (not by start date: queued runs have none) until it finishes."""
        deadline = time.monotonic() + timeout
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        while True:
            state = str(self.api("GET", path)["state"])
            if state in FINISHED:
                return state
            if time.monotonic() > deadline:
                raise StackError(f"{dag_id} {run_id} still {state} after {timeout:g} s")
            time.sleep(0.5)

    def import_error_files(self) -> list[str]:
        return [e["filename"] for e in self.api("GET", "/importErrors")["import_errors"]]

    def wait_for_import_errors(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.import_error_files()) < count:
            if time.monotonic() > deadline:
                raise StackError(f"expected {count} import errors\n{self.log_tails()}")
            time.sleep(0.5)


@contextlib.contextmanager
def running_stack(**kwargs: Any) -> Iterator[AirflowStack]:
    stack = AirflowStack(**kwargs)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        stack.remove_home()
