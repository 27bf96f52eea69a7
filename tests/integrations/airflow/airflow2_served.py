"""An Airflow 2 (``/api/v1``) for unit tests, answering as the real 2.10.5 of the harness does.

The payloads have the shape, fields and formats of the real server's answers (captured from
tests/stack/airflow2.py, see fixtures/SOURCES.md): no ``duration`` on DAG runs, ``next_dagrun``
(a logical date) beside ``next_dagrun_create_after``, absolute ``fileloc`` and import-error
file names, RFC 7807 errors. Served through `ServedAdapter`, so the real client runs unchanged.

    server = Airflow2()
    server.run("shop_ingest", "manual__2026-12-03T01:58:57+00:00", "success",
               start="2026-12-03T01:58:58+00:00", end="2026-12-03T01:59:14+00:00")
    client = server.client()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from integrations.airflow import AirflowClient
from tests.integrations.airflow.served import Answer, Received, ServedAdapter

DAGS_FOLDER = "/opt/airflow/dags"


def problem(status: int, title: str, detail: str) -> Answer:
    return Answer(
        status,
        {
            "detail": detail,
            "status": status,
            "title": title,
            "type": "about:blank",
        },
    )


@dataclass
class Airflow2:
    version: str = "2.10.5"
    dags: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    tis: list[dict[str, Any]] = field(default_factory=list)  # the latest try of each
    tries: list[dict[str, Any]] = field(default_factory=list)  # every try, when recorded
    import_errors: list[dict[str, Any]] = field(default_factory=list)

    def dag(self, dag_id: str, *, owner: str = "dana", **extra: Any) -> None:
        self.dags[dag_id] = {
            "dag_id": dag_id,
            "dag_display_name": dag_id,
            "description": None,
            "fileloc": f"{DAGS_FOLDER}/{dag_id}.py",
            "has_import_errors": False,
            "is_active": True,
            "is_paused": False,
            "is_subdag": False,
            "last_parsed_time": "2026-12-03T01:46:44.670760+00:00",
            "max_active_runs": 16,
            "next_dagrun": "2026-12-02T00:00:00+00:00",
            "next_dagrun_create_after": "2026-12-03T00:00:00+00:00",
            "next_dagrun_data_interval_start": "2026-12-02T00:00:00+00:00",
            "next_dagrun_data_interval_end": "2026-12-03T00:00:00+00:00",
            "owners": [owner],
            "root_dag_id": None,
            "schedule_interval": {"__type": "CronExpression", "value": "@daily"},
            "tags": [{"name": "shop"}],
            "timetable_description": "At 00:00",
            **extra,
        }

    def run(
        self,
        dag_id: str,
        run_id: str,
        state: str,
        *,
        start: str | None,
        end: str | None,
        logical: str | None = None,
    ) -> None:
        logical = logical or run_id.split("__", 1)[-1]
        self.runs.append(
            {
                "conf": {},
                "dag_id": dag_id,
                "dag_run_id": run_id,
                "data_interval_start": logical,
                "data_interval_end": logical,
                "end_date": end,
                "execution_date": logical,
                "external_trigger": True,
                "last_scheduling_decision": end,
                "logical_date": logical,
                "note": None,
                "run_type": "manual",
                "start_date": start,
                "state": state,
            }
        )

    def task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        state: str,
        *,
        try_number: int = 1,
        max_tries: int = 0,
        tries: tuple[str, ...] = (),
    ) -> None:
        """A task instance; `tries` are the states of every try, recorded for the endpoint."""

        def ti(number: int, ti_state: str) -> dict[str, Any]:
            return {
                "dag_id": dag_id,
                "dag_run_id": run_id,
                "duration": 0.25,
                "end_date": "2026-12-03T01:52:02.528022+00:00",
                "execution_date": run_id.split("__", 1)[-1],
                "executor_config": "{}",
                "hostname": "vm",
                "map_index": -1,
                "max_tries": max_tries,
                "operator": "_PythonDecoratedOperator",
                "pool": "default_pool",
                "pool_slots": 1,
                "queue": "default",
                "start_date": "2026-12-03T01:52:02.294773+00:00",
                "state": ti_state,
                "task_display_name": task_id,
                "task_id": task_id,
                "try_number": number,
            }

        self.tis.append(ti(try_number, state))
        self.tries.extend(ti(n, s) for n, s in enumerate(tries or (state,), start=1))

    # -- serving ------------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> AirflowClient:
        """A client of this server (API version detected, unless `api_version` is given)."""
        self.adapter = ServedAdapter({}, fallback=self.answer)
        return AirflowClient(
            "http://airflow2.test",
            username="viewer",
            password="viewer",
            adapter=self.adapter,
            **kwargs,
        )

    def answer(self, got: Received) -> Answer:
        parts = got.path.strip("/").split("/")
        if parts[:2] != ["api", "v1"]:
            # What the real webserver answers for /api/v2/…: Flask's HTML page.
            return Answer(404, b"<!doctype html><title>404 Not Found</title>", "text/html")
        rest, query = parts[2:], dict(got.query)
        if rest == ["version"]:
            return Answer(200, {"version": self.version, "git_version": None})
        if rest == ["health"]:
            healthy = {"status": "healthy", "latest_scheduler_heartbeat": None}
            return Answer(200, {"metadatabase": {"status": "healthy"}, "scheduler": healthy})
        if rest == ["dags"]:
            return _page("dags", list(self.dags.values()), query)
        if rest == ["importErrors"]:
            return _page("import_errors", self.import_errors, query)
        if len(rest) >= 2 and rest[0] == "dags":
            return self._dag_answer(rest[1], rest[2:], got)
        return NO_ROUTE

    def _dag_answer(self, dag_id: str, rest: list[str], got: Received) -> Answer:
        query = dict(got.query)
        if not rest:
            if dag_id not in self.dags:
                return problem(404, "DAG not found", f"The DAG with dag_id: {dag_id} was not found")
            return Answer(200, self.dags[dag_id])
        if rest == ["dagRuns"]:
            # Airflow 2 lists no runs (and no error) for a DAG it does not know.
            runs = [r for r in self.runs if dag_id in ("~", r["dag_id"])]
            order = query.get("order_by", "")
            if order in ("-execution_date", "-logical_date"):
                runs.sort(key=lambda r: str(r["execution_date"]), reverse=True)
            elif order == "-id":
                runs = runs[::-1]  # the run created last first
            return _page("dag_runs", runs, query)
        if rest[0] != "dagRuns":
            return NO_ROUTE
        run_id, tail = rest[1], rest[2:]
        if not tail:
            runs = [r for r in self.runs if r["dag_id"] == dag_id and r["dag_run_id"] == run_id]
            if not runs:
                return problem(404, "DAGRun not found", f"DAGRun with {run_id} not found")
            return Answer(200, runs[0])
        tis = [
            t for t in self.tis if dag_id in ("~", t["dag_id"]) and run_id in ("~", t["dag_run_id"])
        ]
        if tail == ["taskInstances"]:
            states = [value for key, value in got.query if key == "state"]
            return _page("task_instances", [t for t in tis if not states or t["state"] in states],
                         query)  # fmt: skip
        if tail[0] != "taskInstances" or len(tail) < 2:
            return NO_ROUTE
        mine = [t for t in tis if t["task_id"] == tail[1]]
        if tail[2:] == ["tries"]:
            if _release(self.version) < (2, 10):
                return NO_ROUTE  # the tries endpoint is new in 2.10
            tries = [
                t
                for t in self.tries
                if (t["dag_id"], t["dag_run_id"], t["task_id"]) == (dag_id, run_id, tail[1])
            ]
        elif tail[2:3] == ["logs"]:
            log = f"[('vm', 'INFO - {tail[1]} try {tail[3]}')]"
            return Answer(200, {"content": log, "continuation_token": None})
        elif tail[2:]:
            return NO_ROUTE
        if not mine:
            return problem(404, "Task instance not found", "Task instance not found")
        if tail[2:] == ["tries"]:
            return Answer(200, {"task_instances": tries, "total_entries": len(tries)})
        return Answer(200, mine[0])


# connexion's answer for a path the API does not have (as a 2.9 server answers …/tries).
NO_ROUTE = problem(
    404,
    "Not Found",
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again.",
)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2])


def _page(key: str, rows: list[dict[str, Any]], query: dict[str, str]) -> Answer:
    offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
    return Answer(200, {key: rows[offset : offset + limit], "total_entries": len(rows)})
