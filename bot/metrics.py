"""Prometheus metrics: every series pipebot exports, defined once, here.

Names follow Prometheus practice: the ``pipebot_`` prefix, base units (``_seconds``, US dollars),
counters end in ``_total``. Labels take values from small fixed sets — a source, a platform, a
connector and one of its client's methods, a model, a status — never a user, channel, thread,
run or job id. docs/operations.md ("Metrics") lists every series with its labels.

**Two kinds of series.**

- *Counted in the process* — counters and histograms incremented where things happen (events
  accepted, acknowledgements, connector calls, model calls, posts retried …). They live in this
  process's `REGISTRY`.
- *Read from the store at scrape time* — jobs by status and the oldest one's age, outbox rows by
  status, open incidents (`StoreGauges`). Whichever process is scraped answers the same,
  because every process shares the store: a web process shows the queue its workers drain.

**One process, or several behind one ``/metrics``.** By default each process has its own
registry: scrape every web process (a Kubernetes pod each). When several processes share one
port on one host (``pipebot serve --role web`` twice with SO_REUSEPORT, as in
bench/bench_slack_ack.py's ``pg2`` layout) a scrape reaches one of them at random, and each
would show only its own counts. Then start every process of the host (web and worker) with
``PROMETHEUS_MULTIPROC_DIR`` naming the same empty directory (wiped before they start; a
tmpfs): prometheus_client then keeps each counter and histogram in a per-process file there,
and `exposition` sums the files of every process — running or exited — so any of them
answers with the host's totals. The store gauges are computed at scrape time in both modes;
there are no per-process gauges, so nothing needs ``mark_process_dead``. The mode is chosen
when prometheus_client is first imported, from the environment, as that library defines it.

    EVENTS_RECEIVED.labels(source="slack").inc()
    with connector_call("airflow", "dags"): ...          # counts, times, classifies failures
    body = exposition(StoreGauges(store, engine))       # the text of one scrape
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as _values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bot.errors import NotFound, ReadOnlyViolation, SourceAuthError, SourceUnavailable

if TYPE_CHECKING:
    # Only for annotations: the store and the engines count with this module.
    from bot.store import Store
    from bot.work import Engine

log = logging.getLogger(__name__)

__all__ = [
    "ACK_LATENCY",
    "CONNECTOR_ERRORS",
    "CONNECTOR_REQUESTS",
    "CONNECTOR_SECONDS",
    "CONTENT_TYPE",
    "DIGESTS_POSTED",
    "EVENTS_DEDUPLICATED",
    "EVENTS_RECEIVED",
    "JOB_SECONDS",
    "LLM_COST",
    "LLM_REQUESTS",
    "LLM_SECONDS",
    "LLM_TOKENS",
    "POSTS_FAILED",
    "POSTS_RETRIED",
    "REGISTRY",
    "StoreGauges",
    "connector_call",
    "declare_connector",
    "declare_job",
    "declare_model",
    "declare_platform",
    "declare_source",
    "exposition",
    "llm_call",
    "multiprocess",
    "observe_connector",
    "reason_of",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# ``_created`` series exist only in single-process mode; without them both modes show the same.
disable_created_metrics()  # type: ignore[no-untyped-call]  # (prometheus_client leaves it bare)

REGISTRY = CollectorRegistry()

# Seconds. Slack and Discord allow 3 s for an acknowledgement, dbt Cloud 10 s for a webhook.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0)
# Seconds. Upstream calls retry for up to tens of seconds; model calls take seconds to minutes.
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

# --- accepting ----------------------------------------------------------------------------

EVENTS_RECEIVED = Counter(
    "pipebot_events_received",
    "Authenticated events delivered to pipebot, duplicates included, by source "
    "(slack, discord, webhook:airflow, webhook:dbt_cloud, webhook:alerts).",
    ["source"],
    registry=REGISTRY,
)
EVENTS_DEDUPLICATED = Counter(
    "pipebot_events_deduplicated",
    "Events refused as a redelivery of one already accepted, by source.",
    ["source"],
    registry=REGISTRY,
)
ACK_LATENCY = Histogram(
    "pipebot_ack_latency_seconds",
    "Seconds from receiving an event to acknowledging it, by source.",
    ["source"],
    buckets=ACK_BUCKETS,
    registry=REGISTRY,
)

# --- work ---------------------------------------------------------------------------------

JOB_SECONDS = Histogram(
    "pipebot_job_duration_seconds",
    "Seconds one run of a job took, by job kind and outcome (done; postponed: it asked to run "
    "again later; error: it raised and is retried or given up).",
    ["kind", "outcome"],
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)
POSTS_RETRIED = Counter(
    "pipebot_posts_retried",
    "Chat posts whose send failed in a way worth retrying (rate limit, 5xx, connection), by "
    "platform.",
    ["platform"],
    registry=REGISTRY,
)
POSTS_FAILED = Counter(
    "pipebot_posts_failed",
    "Chat posts given up for good (the outbox row is dead: channel gone, not allowed …), by "
    "platform.",
    ["platform"],
    registry=REGISTRY,
)
DIGESTS_POSTED = Counter(
    "pipebot_digests_posted",
    "Scheduled digests posted, by platform.",
    ["platform"],
    registry=REGISTRY,
)

# --- connectors ---------------------------------------------------------------------------

CONNECTOR_REQUESTS = Counter(
    "pipebot_connector_requests",
    "Calls to a connector's upstream (Airflow, dbt Cloud, the warehouse), by connector and "
    "operation (the client method).",
    ["connector", "operation"],
    registry=REGISTRY,
)
CONNECTOR_ERRORS = Counter(
    "pipebot_connector_errors",
    "Connector calls that failed, by connector, operation and reason (timeout, connection, "
    "auth, not_found, rate_limited, http_4xx, http_5xx, refused, unavailable, error).",
    ["connector", "operation", "reason"],
    registry=REGISTRY,
)
CONNECTOR_SECONDS = Histogram(
    "pipebot_connector_request_duration_seconds",
    "Seconds a connector call took, retries included, by connector and operation.",
    ["connector", "operation"],
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)

# --- the model ----------------------------------------------------------------------------

LLM_REQUESTS = Counter(
    "pipebot_llm_requests",
    "Messages API calls, by model and outcome (ok, busy, refused, timeout, unreachable, error).",
    ["model", "outcome"],
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "pipebot_llm_tokens",
    "Tokens of answered Messages API calls, by model and type (input, output, cache_read, "
    "cache_write).",
    ["model", "type"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    "pipebot_llm_cost_usd",
    "What answered Messages API calls cost at list prices, in US dollars, by model.",
    ["model"],
    registry=REGISTRY,
)
LLM_SECONDS = Histogram(
    "pipebot_llm_request_duration_seconds",
    "Seconds an answered Messages API call took, by model.",
    ["model"],
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)

# Process CPU, memory and file descriptors, and the Python version: single-process mode only
# (in multiprocess mode they would describe whichever process was scraped).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)


def multiprocess() -> bool:
    """True when this process keeps its series in ``PROMETHEUS_MULTIPROC_DIR`` (decided by
    prometheus_client from the environment when it was first imported)."""
    return bool(getattr(_values.ValueClass, "_multiprocess", False))


# --- declaring the label values a process will use ---------------------------------------
#
# A labelled series appears once a value was recorded for its labels. Components declare theirs
# when they are wired, so every series is scraped — at 0 — from the start: a rate or an alert
# needs the zero, and a dashboard shows "none yet" instead of "no data".


def declare_source(source: str) -> None:
    """Events will arrive from `source` (a chat, a webhook route)."""
    EVENTS_RECEIVED.labels(source)
    EVENTS_DEDUPLICATED.labels(source)
    ACK_LATENCY.labels(source)


def declare_platform(platform: str) -> None:
    """Posts and digests will go to `platform`."""
    POSTS_RETRIED.labels(platform)
    POSTS_FAILED.labels(platform)
    DIGESTS_POSTED.labels(platform)


def declare_connector(connector: str, operations: Iterable[str]) -> None:
    """`connector` will make calls named `operations`."""
    for operation in operations:
        CONNECTOR_REQUESTS.labels(connector, operation)
        CONNECTOR_SECONDS.labels(connector, operation)


def declare_model(model: str) -> None:
    """The agent will call `model`."""
    LLM_REQUESTS.labels(model, "ok")
    for kind in ("input", "output", "cache_read", "cache_write"):
        LLM_TOKENS.labels(model, kind)
    LLM_COST.labels(model)
    LLM_SECONDS.labels(model)


def declare_job(kind: str) -> None:
    """Jobs of `kind` will run in this process."""
    JOB_SECONDS.labels(kind, "done")


# --- recording helpers --------------------------------------------------------------------


def reason_of(error: BaseException) -> str:
    """A failure as a `CONNECTOR_ERRORS` reason, from the core's error family."""
    if isinstance(error, SourceAuthError):
        return "auth"
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, ReadOnlyViolation):
        return "refused"
    if isinstance(error, SourceUnavailable):
        return "unavailable"
    return "error"


def observe_connector(connector: str, operation: str, seconds: float, reason: str | None) -> None:
    """One connector call: counted, timed, and counted as an error with `reason` unless None."""
    CONNECTOR_REQUESTS.labels(connector, operation).inc()
    CONNECTOR_SECONDS.labels(connector, operation).observe(seconds)
    if reason is not None:
        CONNECTOR_ERRORS.labels(connector, operation, reason).inc()


@contextmanager
def connector_call(connector: str, operation: str) -> Iterator[None]:
    """Count and time the block as one call; an exception is an error with `reason_of` it.

    For a connector whose failures arrive as the core's `SourceError`s (the warehouse); HTTP
    connectors know finer reasons and call `observe_connector` themselves.
    """
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        observe_connector(connector, operation, time.perf_counter() - started, reason_of(exc))
        raise
    observe_connector(connector, operation, time.perf_counter() - started, None)


def llm_call(
    model: str,
    *,
    seconds: float,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    cost_usd: float,
) -> None:
    """One answered Messages API call (failed ones: ``LLM_REQUESTS`` with their outcome)."""
    LLM_REQUESTS.labels(model, "ok").inc()
    LLM_SECONDS.labels(model).observe(seconds)
    for kind, count in (
        ("input", input_tokens),
        ("output", output_tokens),
        ("cache_read", cache_read_tokens),
        ("cache_write", cache_write_tokens),
    ):
        LLM_TOKENS.labels(model, kind).inc(count)
    LLM_COST.labels(model).inc(cost_usd)


# --- read at scrape time ------------------------------------------------------------------


# procrastinate's job statuses (bot.work.postgres) under the embedded engine's names, so a
# dashboard reads the same whichever engine runs the jobs.
_JOB_STATUS = {"todo": "queued", "doing": "running", "succeeded": "done"}
_JOB_STATUSES = ("queued", "running", "done", "failed")
_OUTBOX_STATUSES = ("sending", "sent", "dead")
_INCIDENT_STATUSES = ("open", "acknowledged", "snoozed")


class StoreGauges:
    """Gauges read from the shared store at scrape time (a prometheus_client collector).

    A store that cannot be read makes ``pipebot_store_up`` 0 and leaves the others out, so the
    counters are still scraped when the database is down.
    """

    def __init__(
        self, store: Store, engine: Engine, *, now: Callable[[], datetime] | None = None
    ) -> None:
        self._store = store
        self._engine = engine
        self._now = now or (lambda: datetime.now(UTC))

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "pipebot_store_up", "1 when the store answered the scrape's queries, else 0."
        )
        try:
            jobs = _renamed(self._engine.counts())
            oldest = self._engine.oldest_waiting()
            outbox = self._store.outbox.counts()
            incidents = self._store.incidents.open_counts()
        except Exception as exc:  # noqa: BLE001 - a scrape reports the store down, never fails
            log.warning("metrics: the store could not be read", extra={"error": repr(exc)})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _by_status("pipebot_jobs", "Jobs by status.", jobs, _JOB_STATUSES)
        age = GaugeMetricFamily(
            "pipebot_job_oldest_age_seconds",
            "Seconds since the oldest job still queued or running was accepted (0: none).",
        )
        age.add_metric(
            [], max(0.0, (self._now() - _aware(oldest)).total_seconds()) if oldest else 0
        )
        yield age
        yield _by_status(
            "pipebot_outbox", "Outgoing chat posts by status.", outbox, _OUTBOX_STATUSES
        )
        yield _by_status(
            "pipebot_incidents_open",
            "Incidents not resolved, by status.",
            incidents,
            _INCIDENT_STATUSES,
        )


def _renamed(counts: Mapping[str, int]) -> dict[str, int]:
    renamed: dict[str, int] = {}
    for status, count in counts.items():
        name = _JOB_STATUS.get(status, status)
        renamed[name] = renamed.get(name, 0) + count
    return renamed


def _by_status(
    name: str, documentation: str, counts: Mapping[str, int], always: Iterable[str]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    # The usual statuses are always there (0 included), so an alert on one never goes blank.
    for status in sorted({*always, *counts}):
        family.add_metric([status], counts.get(status, 0))
    return family


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _BuildInfo:
    def collect(self) -> Iterable[Metric]:
        try:
            version = metadata.version("pipebot")
        except metadata.PackageNotFoundError:
            version = "unknown"
        info = GaugeMetricFamily(
            "pipebot_build_info", "Always 1; the version pipebot runs.", labels=["version"]
        )
        info.add_metric([version], 1)
        yield info


class _Scrape:
    def __init__(self, parts: Iterable[Collector]) -> None:
        self._parts = tuple(parts)

    def collect(self) -> Iterable[Metric]:
        for part in self._parts:
            yield from part.collect()


def exposition(*at_scrape: Collector) -> bytes:
    """The Prometheus text of one scrape: this process's counters and histograms — or, in
    multiprocess mode, those of every process that shares the directory — followed by the
    `at_scrape` collectors (`StoreGauges`), computed now."""
    counted: Collector = (
        MultiProcessCollector(None)  # type: ignore[no-untyped-call]  # (untyped upstream)
        if multiprocess()
        else REGISTRY
    )
    return generate_latest(_Scrape((counted, _BuildInfo(), *at_scrape)))
