"""A real Airflow 2 (2.10.5) for integration tests: the second harness, beside Airflow 3.

    stack = Airflow2Stack()
    stack.start()                      # venv (cached) → migrate, users → 2 servers
    run_id = stack.trigger("shop_ingest")
    stack.wait("shop_ingest", run_id)  # → "success"
    stack.stop()

Everything `AirflowStack` does (fresh home, free ports, process groups, log tails, straggler
check, waits on conditions) holds here; what differs is Airflow 2 itself:

* its own venv, ``.cache/venvs/airflow-2.10.5``: a plain ``pip install
  apache-airflow==2.10.5`` resolves to a working set here (the official constraints files
  are not reachable, and none were needed);
* ``/api/v1`` with basic auth (``[api] auth_backends`` = basic_auth, session) and FAB users
  made with the CLI: ``airflow sync-perm`` first — without it the *Viewer* role does not
  exist yet — then ``airflow users create`` for ``admin`` (Admin) and ``viewer`` (Viewer);
* two processes: ``airflow webserver`` (gunicorn, one worker) and ``airflow scheduler``
  (which parses the DAG folder itself and runs the tasks);
* the SequentialExecutor: Airflow 2 refuses any other executor on SQLite, and one task at a
  time is enough for the sample DAGs.

Measured on the 2-core machine of the shared notes (December 2026): venv ~45 s once;
``db migrate`` + ``sync-perm`` + two users ~11 s; servers healthy ~7 s later; the sample
runs finish ~20 s after their trigger.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from tests.stack.airflow_stack import USERS, AirflowStack, _run

AIRFLOW2_VERSION = "2.10.5"
# Airflow 2's FAB roles for the harness users (the Airflow 3 harness names them admin/viewer).
FAB_ROLES = {"admin": "Admin", "viewer": "Viewer"}


class Airflow2Stack(AirflowStack):
    """One Airflow 2 deployment: webserver and scheduler on free ports, SQLite, basic auth."""

    version = AIRFLOW2_VERSION
    api_root = "/api/v1"
    servers = ("webserver", "scheduler")
    health_path = "/api/v1/health"

    def env(self) -> dict[str, str]:
        """The complete environment of every Airflow 2 process."""
        return {
            **self.common_env(),
            # Airflow 2 allows only the SequentialExecutor on SQLite.
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
            "AIRFLOW__API__AUTH_BACKENDS": (
                "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
            ),
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(self.port),
            "AIRFLOW__WEBSERVER__BASE_URL": self.base_url,
            # One gunicorn worker: the default four cost ~4 × 200 MB and start-up time.
            "AIRFLOW__WEBSERVER__WORKERS": "1",
            "AIRFLOW__WEBSERVER__SECRET_KEY": "pipebot-test-secret-key",
            # New DAG files are looked for every 5 s (default 300 s).
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
        }

    def prepare(self, airflow: Path, env: Mapping[str, str]) -> None:
        _run([str(airflow), "db", "migrate"], timeout=180, env=env)
        # The FAB roles (Viewer among them) exist only once permissions are synced.
        _run([str(airflow), "sync-perm"], timeout=180, env=env)
        for user in USERS:
            _run(
                [
                    str(airflow),
                    "users",
                    "create",
                    "--role",
                    FAB_ROLES[user],
                    "--username",
                    user,
                    "--password",
                    user,
                    "--firstname",
                    user,
                    "--lastname",
                    "pipebot-tests",
                    "--email",
                    f"{user}@example.com",
                ],
                timeout=120,
                env=env,
            )

    def auth(self, username: str = "admin") -> dict[str, str]:
        """Basic auth (the passwords are the user names)."""
        pair = base64.b64encode(f"{username}:{username}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    def token(self, username: str = "admin") -> str:
        raise NotImplementedError("Airflow 2 has no token exchange: use basic auth")

    def trigger(self, dag_id: str, logical_date: str | None = None) -> str:
        self.wait_for_dag(dag_id)
        body = {"logical_date": logical_date} if logical_date else {}
        run = self.api("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json=body)
        return str(run["dag_run_id"])
