"""Optional OpenTelemetry traces: ``pip install 'pipebot[otel]'``, then the standard variables.

Configured only by OpenTelemetry's own environment variables, read by its SDK:
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; OTLP over HTTP with
protobuf), ``OTEL_SERVICE_NAME`` (default ``pipebot``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``; ``OTEL_TRACES_EXPORTER=console`` prints spans
instead; ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn tracing off.

`setup` does nothing (and imports nothing of OpenTelemetry) unless an exporter is configured
that way and the extra is installed. Once set up, the process traces:

- every HTTP request it serves (`instrument_app`, called by `handlers.server.Server.asgi`);
- every job run (`traced`, called by `Server.add_jobs`), with the job kind;
- every HTTP call the connectors make (``requests``), as a child of the job or request it
  serves — the core runs tool calls in a copy of the caller's context (`bot.fanout`).

The bot's own database is not traced: OpenTelemetry's SQLAlchemy instrumentation supports
SQLAlchemy below 2.1 only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette

from bot.work import Attempt, JobKind

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "pipebot"


class _Tracing:
    provider: Any = None  # the SDK's TracerProvider once `setup` has run


_ON = _Tracing()


def wanted(environ: Mapping[str, str]) -> str | None:
    """The exporter the OTEL_* variables ask for (``otlp`` or ``console``), or None."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = {
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    }
    if "none" in exporters:
        return None
    if "console" in exporters:
        return "console"
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if endpoint or "otlp" in exporters else None


def setup() -> bool:
    """Start tracing when the OTEL_* variables ask for it; True when it is on.

    Call once per process, before the server is built (its app and jobs are traced as they
    are added). Spans still buffered are sent when the process exits.
    """
    if _ON.provider is not None:
        return True
    # OpenTelemetry's variables belong to its SDK, which reads them itself; this only looks
    # whether any exporter is asked for, so an unconfigured process imports nothing of it.
    environ = os.environ  # noqa: TID251
    exporter = wanted(environ)
    if exporter is None:
        return False
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", ""
    )
    if protocol.startswith("grpc"):
        log.warning("pipebot sends OTLP over HTTP (http/protobuf) only, not %s", protocol)
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        log.warning(
            "OTEL_* variables ask for traces but OpenTelemetry is not installed: "
            "pip install 'pipebot[otel]'"
        )
        return False
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    _ON.provider = provider
    log.info("tracing on", extra={"exporter": exporter})
    return True


def instrument_app(app: Starlette) -> None:
    """Trace the requests `app` serves (a no-op unless `setup` turned tracing on)."""
    if _ON.provider is None:
        return
    from opentelemetry.instrumentation.starlette import StarletteInstrumentor

    StarletteInstrumentor.instrument_app(app, tracer_provider=_ON.provider)


def traced(kind: JobKind[Any]) -> JobKind[Any]:
    """`kind` with each run in a span named after it (itself unless tracing is on)."""
    if _ON.provider is None:
        return kind
    tracer = _ON.provider.get_tracer(__name__)
    run = kind.run

    def run_in_span(payload: Any, attempt: Attempt) -> None:
        with tracer.start_as_current_span(
            f"job {kind.name}",
            attributes={"pipebot.job.kind": kind.name, "pipebot.job.attempt": attempt.number},
        ):
            run(payload, attempt)

    return JobKind(kind.name, run_in_span, kind.payload)
