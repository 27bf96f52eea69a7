"""PostgreSQL deployments: jobs on procrastinate, shared by any number of processes and hosts.

**Accepting** (web processes). `submit` runs one transaction on the store's own connection:
insert the event id into ``accepted_events`` (``ON CONFLICT DO NOTHING``) and, when it is new,
defer the job through that same connection — so the id and the job commit together, and a
redelivery is refused for as long as the id is kept (a procrastinate queueing lock would refuse
it only while the first job still waits). Web processes open no procrastinate pool at all.

**Running** (worker processes; `start`). procrastinate's worker runs in a thread with its own
event loop; handlers are synchronous and run on that loop's executor, sized to `concurrency`.
Workers beat every few seconds; a periodic task every few seconds retries the jobs of workers
whose heartbeat is older than `stalled_after` (a SIGKILLed or vanished worker), and a daily one
removes finished jobs with procrastinate's builtin cleanup (pipebot's after the retention window,
the recovery task's own runs after an hour). A job that raises is retried by a
retry strategy built on the shared `Policy` (honouring `RetryLater`'s delay, e.g. Slack's
``Retry-After``). SIGTERM stops fetching and lets running jobs finish.

This module is imported only when the store is PostgreSQL: SQLite deployments never load it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
import psycopg
from procrastinate import builtin_tasks, job_context
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy import text
from sqlalchemy.engine import URL

from bot import logs
from bot.store import Store
from bot.work import JobKind, Policy, RetryLater, add_kinds, encode, lower_priority, run_timed

log = logging.getLogger(__name__)

TASK = "pipebot.job"
JOBS_QUEUE = "jobs"
MAINTENANCE_QUEUE = "maintenance"
# Stalled workers are looked for this often (a 6th cron field counts seconds).
STALLED_CRON = "* * * * * */5"
CLEANUP_CRON = "17 * * * *"
# Retries and stalled-job recoveries send no NOTIFY: the worker finds them by polling.
FETCH_POLL_S = 0.5
# How long a stopping worker lets async jobs run on; synchronous ones (all of pipebot's) run
# to their end, as they cannot be interrupted.
SHUTDOWN_S = 10


def conninfo(url: URL) -> str:
    """A libpq URI for the store's SQLAlchemy URL (its query options, e.g. a search_path, kept)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class _Retry(BaseRetryStrategy):
    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        queued = job.task_kwargs.get("queued_at")
        queued_at = float(queued) if isinstance(queued, int | float) else time.time()
        age = timedelta(seconds=time.time() - queued_at)
        number = job.attempts + 1  # procrastinate counts the runs before this one
        delay = self._policy.delay(number, exception, age)
        if delay is None:
            log.error(
                "job given up",
                extra={"job": job.task_kwargs.get("key"), "attempts": number},
            )
            return None
        if isinstance(exception, RetryLater):
            log.info(
                "job postponed",
                extra={"job": job.task_kwargs.get("key"), "reason": exception.reason},
            )
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=delay))


class ProcrastinateEngine:
    name = "procrastinate"

    def __init__(
        self,
        store: Store,
        *,
        concurrency: int = 32,
        policy: Policy | None = None,
        stalled_after: float = 30.0,
        keep_jobs: timedelta = timedelta(days=14),
    ) -> None:
        self._store = store
        self._kinds: dict[str, JobKind[Any]] = {}
        self._concurrency = concurrency
        self._policy = policy or Policy()
        self._stalled_after = stalled_after
        self._keep_jobs = keep_jobs
        # Defers only, always through the caller's connection: never opened, no pool.
        self._deferrer = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())
        self._app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=conninfo(store.engine.url),
                min_size=1,
                max_size=4,
                # A half-open connection must not hang the worker silently (procrastinate #1513).
                kwargs={"keepalives": 1, "keepalives_idle": 30, "tcp_user_timeout": 30_000},
            )
        )
        self._define_tasks()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()

    # --- the interface ---------------------------------------------------------------------

    def register(self, kinds: Iterable[JobKind[Any]]) -> None:
        add_kinds(self._kinds, kinds)

    def submit(self, key: str, kind: str, payload: object) -> bool:
        # On the driver's connection, in one transaction: this runs before the platform gets
        # its acknowledgement, and SQLAlchemy's statement machinery cost more than the insert.
        with self._store.engine.connect() as pooled:
            driver = pooled.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            with driver.transaction():
                if not self._store.accepted.accept(driver, key, kind, encode(payload)):
                    return False
                self._deferrer.configure_task(TASK, queue=JOBS_QUEUE, connection=driver).defer(
                    kind=kind, key=key, queued_at=time.time()
                )
        return True

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="procrastinate", daemon=True)
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the procrastinate worker did not start within 30 s")

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._loop is None or self._task is None:
            self._thread = None
            return
        # Cancelling the worker task is procrastinate's graceful stop: no new jobs, running
        # ones finish (within shutdown_graceful_timeout for async ones).
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout + 5)
        self._thread = None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def counts(self) -> dict[str, int]:
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "select status::text, count(*) from procrastinate_jobs "
                    "where queue_name = :queue group by status"
                ),
                {"queue": JOBS_QUEUE},
            ).all()
        return {str(status): int(count) for status, count in rows}

    def oldest_waiting(self) -> datetime | None:
        # `queued_at` (epoch seconds) is a task argument: the job row records no creation time.
        with self._store.engine.connect() as connection:
            oldest = connection.execute(
                text(
                    "select min((args->>'queued_at')::float8) from procrastinate_jobs "
                    "where queue_name = :queue and status in ('todo', 'doing')"
                ),
                {"queue": JOBS_QUEUE},
            ).scalar()
        return None if oldest is None else datetime.fromtimestamp(float(oldest), UTC)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts()
            if not counts.get("todo") and not counts.get("doing"):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)  # polling the database: there is no event to wait on here

    # --- the worker --------------------------------------------------------------------------

    def _define_tasks(self) -> None:
        app, kinds, policy, store = self._app, self._kinds, self._policy, self._store
        stalled_after, keep_jobs = self._stalled_after, self._keep_jobs

        @app.task(name=TASK, queue=JOBS_QUEUE, pass_context=True, retry=_Retry(policy))
        def run_job(
            context: job_context.JobContext, *, kind: str, key: str, queued_at: float = 0.0
        ) -> None:
            found = kinds.get(kind)
            if found is None:
                raise LookupError(f"no handler for job kind {kind!r}")
            accepted, payload = store.accepted.payload(key)
            if not accepted:
                raise LookupError(f"the accepted event {key!r} is gone (pruned?)")
            assert context.job is not None
            with logs.context(job=key, job_kind=kind):
                run_timed(found, payload, policy.attempt(context.job.attempts + 1))

        # A queueing lock keeps one recovery pending at a time; no `lock`, which would let the
        # task stall itself (procrastinate #1408).
        @app.periodic(cron=STALLED_CRON, periodic_id="retry-stalled")
        @app.task(
            name="pipebot.retry_stalled",
            queue=MAINTENANCE_QUEUE,
            queueing_lock="pipebot.retry_stalled",
            pass_context=True,
        )
        async def retry_stalled(context: job_context.JobContext, timestamp: int) -> None:
            await _retry_stalled(context.app, stalled_after)

        @app.periodic(cron=CLEANUP_CRON, periodic_id="remove-old-jobs")
        @app.task(name="pipebot.remove_old_jobs", queue=MAINTENANCE_QUEUE, pass_context=True)
        async def remove_old_jobs(context: job_context.JobContext, timestamp: int) -> None:
            for queue, hours in (
                (JOBS_QUEUE, max(1, int(keep_jobs.total_seconds() // 3600))),
                (MAINTENANCE_QUEUE, 1),  # the recovery task runs every few seconds
            ):
                await builtin_tasks.remove_old_jobs(
                    context,
                    max_hours=hours,
                    queue=queue,
                    remove_failed=True,
                    remove_cancelled=True,
                    remove_aborted=True,
                )

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        # Handlers are synchronous: they run on the loop's default executor, which procrastinate
        # would otherwise cap at min(32, CPUs + 4) threads whatever the concurrency.
        loop.set_default_executor(
            ThreadPoolExecutor(
                max_workers=self._concurrency,
                thread_name_prefix="job",
                initializer=lower_priority,
            )
        )
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._task = loop.create_task(self._work())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _work(self) -> None:
        async with self._app.open_async():
            # At start-up: the jobs of workers already known dead run again now.
            await _retry_stalled(self._app, self._stalled_after)
            self._started.set()
            await self._app.run_worker_async(
                queues=[JOBS_QUEUE, MAINTENANCE_QUEUE],
                concurrency=self._concurrency,
                install_signal_handlers=False,
                fetch_job_polling_interval=FETCH_POLL_S,
                update_heartbeat_interval=min(5.0, self._stalled_after / 4),
                stalled_worker_timeout=self._stalled_after,
                shutdown_graceful_timeout=SHUTDOWN_S,
                delete_jobs="never",
            )


async def _retry_stalled(app: procrastinate.App, stalled_after: float) -> None:
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=TASK, seconds_since_heartbeat=stalled_after
    )
    for job in stalled:
        log.warning(
            "a job of a dead worker runs again",
            extra={"job": job.task_kwargs.get("key"), "worker": job.worker_id},
        )
        await app.job_manager.retry_job(job, retry_at=datetime.now(UTC))
