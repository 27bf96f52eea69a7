"""Optional OpenTelemetry traces (`handlers.tracing`): configured only by the standard OTEL_*
variables, sent over OTLP/HTTP to a local receiver; nothing at all without them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.work import JobKind
from handlers import tracing

ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """A local OTLP/HTTP collector: keeps every ``POST /v1/traces`` body; answers ``GET /ping``
    (the upstream the traced job calls)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.pings = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/traces":
                    receiver.bodies.append(body)
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                receiver.pings += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[Any]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        found = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    found += [(resource, span) for span in scope.spans]
        return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def run_process(tmp_path: Path, upstream: str, **otel: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(otel)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.server.tracing_process",
            f"sqlite:///{tmp_path}/tracing.db",
            upstream,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_requests_jobs_and_upstream_calls_are_traced(tmp_path: Path, receiver: Receiver) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    said = run_process(tmp_path, receiver.url, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
    assert said == "tracing on"
    assert receiver.pings == 1
    spans = receiver.spans()
    by_name = {span.name: (resource, span) for resource, span in spans}
    assert "GET /healthz" in by_name, sorted(by_name)
    assert "job test.call" in by_name, sorted(by_name)
    assert {resource["service.name"] for resource, _ in spans} == {"pipebot"}
    job = by_name["job test.call"][1]
    (call,) = [s for _, s in spans if s.name == "GET" and s.parent_span_id == job.span_id]
    assert call.trace_id == job.trace_id  # the upstream call is part of the job's trace


def test_otel_sdk_disabled_sends_nothing(tmp_path: Path, receiver: Receiver) -> None:
    said = run_process(
        tmp_path, receiver.url, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SDK_DISABLED="true"
    )
    assert said == "tracing off"
    assert receiver.pings == 1 and receiver.bodies == []


def test_without_otel_variables_nothing_of_opentelemetry_is_loaded(
    tmp_path: Path, receiver: Receiver
) -> None:
    assert run_process(tmp_path, receiver.url) == "tracing off"
    assert receiver.bodies == []
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from handlers import tracing, server; "
            "print(tracing.setup(), any(m.startswith('opentelemetry.sdk') for m in sys.modules))",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("environ", "exporter"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, "otlp"),
    ],
)
def test_which_exporter_the_variables_ask_for(
    environ: dict[str, str], exporter: str | None
) -> None:
    assert tracing.wanted(environ) == exporter


def test_jobs_are_left_as_they_are_when_tracing_is_off() -> None:
    kind = JobKind("test.untraced", lambda payload, attempt: None, dict)
    assert tracing.traced(kind) is kind
