"""`triage`, `dag` and `runs` on what Airflow 2 answers (issue 11, sections 8 and 9): the real
playbooks and the real client against a served Airflow 2 (`Airflow2`). The same facts on real
Airflow 2 and 3 servers: tests/integrations/triage/test_airflow_versions_live.py."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.commands import Request
from bot.messages import Reply, Tone
from bot.owners import OwnerDirectory
from bot.playbooks import dag, runs
from bot.playbooks.triage import TriageReport, render, triage_airflow
from bot.ports import Sources
from bot.rendering import to_text
from tests.agent.support import ProgressLog, inbound
from tests.integrations.airflow.airflow2_served import DAGS_FOLDER, Airflow2

NOW = datetime(2026, 12, 3, 2, 10, tzinfo=UTC)
EARLY = "manual__2026-12-02T09:00:00+00:00"
RETRIED = "manual__2026-12-03T01:47:00.678904+00:00"
BROKEN_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed\n'
    f'  File "{DAGS_FOLDER}/broken_dag.py", line 12, in <module>\n'
    "    import shop_refunds_sdk  # not installed: this is the import error the tests look for\n"
    "    ^^^^^^^^^^^^^^^^^^^^^^^\n"
    "ModuleNotFoundError: No module named 'shop_refunds_sdk'\n"
)


def airflow2(version: str = "2.10.5") -> Airflow2:
    server = Airflow2(version=version)
    server.dag("payments_sync", owner="data-platform")
    server.dag("orders_daily", owner="dana")
    server.import_errors.append(
        {
            "filename": f"{DAGS_FOLDER}/broken_dag.py",
            "import_error_id": 1,
            "stack_trace": BROKEN_TRACE,
            "timestamp": "2026-12-03T01:46:45.096029+00:00",
        }
    )
    # payments_sync: a clean success yesterday, then today's run that needed a retry.
    server.run(
        "payments_sync",
        EARLY,
        "success",
        start="2026-12-02T09:00:01+00:00",
        end="2026-12-02T09:00:21+00:00",
    )
    server.task("payments_sync", EARLY, "sync_payments", "success", max_tries=1)
    server.run(
        "payments_sync",
        RETRIED,
        "success",
        start="2026-12-03T01:47:01+00:00",
        end="2026-12-03T01:47:31+00:00",
    )
    server.task("payments_sync", RETRIED, "sync_payments", "success", try_number=2, max_tries=1,
                tries=("failed", "success"))  # fmt: skip
    return server


def sources(server: Airflow2) -> Sources:
    return Sources(airflow=server.client(), now=lambda: NOW)


def ask(server: Airflow2, *args: str) -> Request:
    return Request(
        message=inbound(" ".join(args)), args=args, sources=sources(server), progress=ProgressLog()
    )


def field(reply: Reply, label: str) -> str:
    return next(f.value for s in reply.sections for f in s.fields if f.label == label)


# -- a run that succeeded after a retry ------------------------------------------------------


def test_run_that_succeeded_after_a_retry_is_its_own_last_success() -> None:
    report = triage_airflow(sources(airflow2()), dag_id="payments_sync")
    assert isinstance(report, TriageReport)
    assert report.run_id == RETRIED and report.last_success_run_id == RETRIED
    reply = render(report, platform="console", owners=OwnerDirectory())
    # Not yesterday's clean run ("21h ago"): this one, and how.
    assert field(reply, "Last success") == "this run succeeded after a retry"
    assert reply.title == "payments_sync succeeded after retries"


def test_durations_on_airflow_2_come_from_start_and_end() -> None:
    report = triage_airflow(sources(airflow2()), dag_id="payments_sync")
    assert isinstance(report, TriageReport)
    assert report.duration_s == 30.0 and report.usual_duration_s == 20.0
    reply = render(report, platform="console", owners=OwnerDirectory())
    assert field(reply, "Duration") == "30s (usually 20s)"


def test_history_says_only_what_is_true_and_not_zero() -> None:
    report = triage_airflow(sources(airflow2()), dag_id="payments_sync")
    assert isinstance(report, TriageReport)
    [history] = [s for s in render(report, platform="console", owners=OwnerDirectory()).sections
                 if s.heading == "History"]  # fmt: skip
    assert history.bullets == ("`sync_payments` — flaky: retried in 1 of the last 2 runs",)

    server = airflow2()
    server.run(
        "orders_daily",
        EARLY,
        "failed",
        start="2026-12-02T09:00:01+00:00",
        end="2026-12-02T09:00:05+00:00",
    )
    server.task("orders_daily", EARLY, "transform", "failed")
    server.run(
        "orders_daily",
        RETRIED,
        "failed",
        start="2026-12-03T01:47:01+00:00",
        end="2026-12-03T01:47:09+00:00",
    )
    server.task("orders_daily", RETRIED, "transform", "failed")  # fmt: skip
    failing = triage_airflow(sources(server), dag_id="orders_daily")
    assert isinstance(failing, TriageReport)
    text = to_text(render(failing, platform="console", owners=OwnerDirectory()))
    assert "`transform` — failing repeatedly: failed in 2 of the last 2 runs" in text
    assert "retried in 0" not in text


def test_before_airflow_2_10_retries_are_counted_and_the_verdict_kept() -> None:
    report = triage_airflow(sources(airflow2(version="2.9.3")), dag_id="payments_sync")
    assert isinstance(report, TriageReport)
    [retried] = report.retried
    assert [(t.try_number, t.state) for t in retried.tries] == [
        (1, "not recorded"),
        (2, "success"),
    ]
    assert report.flaky[0].verdict == "flaky"
    assert report.unavailable == (
        "Airflow tries of sync_payments: counted from the try number: this Airflow has no "
        "tries endpoint (new in Airflow 2.10)",
    )
    text = to_text(render(report, platform="console", owners=OwnerDirectory()))
    assert "Could not check Airflow tries of sync_payments" in text


# -- DAGs that do not exist ------------------------------------------------------------------


def test_dag_that_exists_only_as_an_import_error_is_triaged_with_that_error() -> None:
    reply = triage_airflow(sources(airflow2()), dag_id="shop_refunds")
    assert isinstance(reply, Reply)
    assert reply.title == "shop_refunds: its DAG file fails to import"
    assert reply.tone is Tone.ERROR
    assert "Did you mean" not in reply.text
    assert field(reply, "Error") == "`ModuleNotFoundError: No module named 'shop_refunds_sdk'`"
    assert field(reply, "File") == f"`{DAGS_FOLDER}/broken_dag.py`"
    assert field(reply, "Last seen") == "23m 15s ago"
    [section] = reply.sections
    assert section.code is not None and "import shop_refunds_sdk" in section.code.text
    for command in (dag, runs):
        same = command.run(ask(airflow2(), "shop_refunds"))
        assert same.title == reply.title


def test_unknown_dag_gets_close_names_no_http_path_and_the_files_that_fail() -> None:
    for reply in (
        triage_airflow(sources(airflow2()), dag_id="payment_sync"),
        dag.run(ask(airflow2(), "payment_sync")),
        runs.run(ask(airflow2(), "payment_sync")),  # Airflow 2 lists no runs, not a 404
    ):
        assert isinstance(reply, Reply)
        assert reply.title == "No DAG `payment_sync`"
        assert reply.text == (
            "Airflow has no DAG `payment_sync`. Did you mean `payments_sync`? 1 DAG file fails "
            "to import (`broken_dag.py`); a DAG defined in one of them is missing until its "
            "file imports."
        )


# -- the next run ----------------------------------------------------------------------------


def test_dag_never_shows_a_past_next_run_as_if_it_were_ahead() -> None:
    server = airflow2()
    reply = dag.run(ask(server, "payments_sync"))
    # next_dagrun (the logical date) is 2026-12-02; the run is due at 2026-12-03 00:00.
    assert field(reply, "Next run") == (
        "2026-12-03 00:00 UTC — overdue by 2h 10m: not started yet; is the scheduler running?"
    )
    server.dags["payments_sync"]["is_paused"] = True
    paused = dag.run(ask(server, "payments_sync"))
    assert field(paused, "Next run").endswith("overdue by 2h 10m: the DAG is paused")
    server.dags["payments_sync"].update(
        is_paused=False, next_dagrun_create_after="2026-12-04T00:00:00+00:00"
    )
    ahead = dag.run(ask(server, "payments_sync"))
    assert field(ahead, "Next run") == "2026-12-04 00:00 UTC (in 21h 50m)"


def test_runs_and_dag_list_runs_by_when_they_ran() -> None:
    server = airflow2()
    # Re-run of an old interval, triggered last: dated 2026-01-05, ran after everything else.
    late = "manual__2026-01-05T00:00:00+00:00"
    server.run(
        "payments_sync",
        late,
        "failed",
        start="2026-12-03T02:00:01+00:00",
        end="2026-12-03T02:00:09+00:00",
    )
    server.task("payments_sync", late, "sync_payments", "failed", max_tries=1)  # fmt: skip
    listed = runs.run(ask(server, "payments_sync"))
    assert [b.split("`")[1] for b in listed.sections[0].bullets] == [late, RETRIED, EARLY]
    assert listed.tone is Tone.ERROR  # the latest run failed
    shown = dag.run(ask(server, "payments_sync"))
    assert [s.heading for s in shown.sections][-1] == "Latest run failed"
    assert shown.tone is Tone.ERROR
    assert "took 8s" in shown.sections[1].bullets[0]  # the duration, from start and end
