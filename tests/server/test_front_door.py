"""The front door: huge, endless, slow or malformed bodies are refused before they cost memory
or event-loop time, while /healthz keeps answering.

A real uvicorn (with `uvicorn_limits`) serves a small app in a thread of this process, so the
process's RSS is the server's. Clients are raw sockets: an upload must be able to go on after
the server has answered, which is the scenario the issue reported.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.settings import ServerSettings
from handlers.front_door import BodyLimit, uvicorn_limits

MiB = 1024 * 1024
LIMIT = 1 * MiB
TIMEOUT_S = 0.5
HUGE = 150 * MiB
PREFIXES = ("/slack/", "/webhooks/")


@dataclass
class Served:
    url: str
    port: int
    reached: list[int] = field(default_factory=list)  # body sizes the echo route saw


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    reached: list[int] = []

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def echo(request: Request) -> Response:
        body = await request.body()
        reached.append(len(body))
        return Response(body, headers={"x-sha256": hashlib.sha256(body).hexdigest()})

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/slack/events", echo, methods=["POST"]),
        ]
    )
    limited = BodyLimit(app, prefixes=PREFIXES, max_bytes=LIMIT, timeout=TIMEOUT_S)
    config = uvicorn.Config(
        limited,
        log_config=None,
        access_log=False,
        lifespan="off",
        **uvicorn_limits(ServerSettings()),
    )
    server = uvicorn.Server(config)
    # Listening before uvicorn runs: clients may connect at once (the backlog holds them until
    # the loop accepts), so no test waits for start-up.
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # with proto 0 every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield Served(url=f"http://127.0.0.1:{port}", port=port, reached=reached)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# --- raw-socket client ---------------------------------------------------------------------


@dataclass
class Upload:
    status: int
    answered_after: float  # seconds from the request line to the status line
    body_sent: int  # body bytes the client managed to hand to the kernel
    response: bytes


def upload(port: int, head: bytes, chunks: Iterable[bytes | memoryview]) -> Upload:
    """Send `head`, then `chunks` from a second thread until they run out or the server
    closes; meanwhile read the answer."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(10)
    sent = [0]

    def push() -> None:
        try:
            for chunk in chunks:
                conn.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass  # the server closed the connection: the upload is over

    started = time.perf_counter()
    conn.sendall(head)
    sender = threading.Thread(target=push, daemon=True)
    sender.start()
    received = b""
    answered = 0.0
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            if not received:
                answered = time.perf_counter() - started
            received += data
    except OSError:
        pass  # a reset after the answer: the unread rest of the upload
    sender.join(10)
    conn.close()
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else 0
    return Upload(status=status, answered_after=answered, body_sent=sent[0], response=received)


def zeros(total: int, size: int = MiB) -> Iterator[memoryview]:
    block = bytes(size)  # one buffer, sent again and again: the client adds no memory
    view = memoryview(block)
    left = total
    while left > 0:
        yield view[: min(size, left)]
        left -= size


def chunked(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    frame = f"{size:x}\r\n".encode() + bytes(size) + b"\r\n"
    for _ in range(total // size):
        yield frame
    yield b"0\r\n\r\n"


def post_head(path: str, *, length: int | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: pipebot", "Content-Type: application/json"]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class PeakRss:
    """The highest RSS seen while the block runs (sampled every few milliseconds)."""

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = rss_bytes()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def healthz_latencies(url: str, stop: threading.Event, minimum: int) -> list[float]:
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=5) as http:
        while not stop.is_set() or len(latencies) < minimum:
            started = time.perf_counter()
            answer = http.get("/healthz")
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200
    return latencies


# --- the scenarios -------------------------------------------------------------------------


def test_huge_declared_uploads_are_refused_at_once_while_healthz_answers(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with httpx.Client(base_url=served.url) as http:
        assert http.get("/healthz").status_code == 200  # warm: the first request builds things
    before = len(served.reached)
    results: list[Upload] = []
    stop = threading.Event()
    latencies: list[float] = []

    def probe() -> None:
        latencies.extend(healthz_latencies(served.url, stop, minimum=20))

    def one() -> None:
        results.append(upload(served.port, post_head("/slack/events", length=HUGE), zeros(HUGE)))

    with PeakRss() as rss:
        prober = threading.Thread(target=probe)
        prober.start()
        uploaders = [threading.Thread(target=one) for _ in range(4)]  # the four
        for uploader in uploaders:
            uploader.start()
        for uploader in uploaders:
            uploader.join(30)
        stop.set()
        prober.join(30)

    assert [r.status for r in results] == [413] * 4
    assert max(r.answered_after for r in results) < 1.0
    assert all(r.body_sent < HUGE // 3 for r in results)  # the server stopped the uploads
    assert b'"error"' in results[0].response and b"1048576 bytes" in results[0].response
    assert b"connection: close" in results[0].response.lower()
    assert len(latencies) >= 20 and max(latencies) < 0.1, latencies
    assert rss.growth < 20 * MiB, f"RSS grew by {rss.growth / MiB:.1f} MiB"
    assert len(served.reached) == before  # the app never saw them
    refusals = [r for r in caplog.records if r.name == "handlers.front_door"]
    assert len(refusals) == 4 and all(r.exc_info is None for r in refusals)
    assert {getattr(r, "status", None) for r in refusals} == {413}
    print(
        f"\n4 x 150 MB declared: 413 after max {max(r.answered_after for r in results) * 1000:.1f}"
        f" ms; healthz median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms, max "
        f"{max(latencies) * 1000:.1f} ms over {len(latencies)}; RSS "
        f"+{rss.growth / MiB:.1f} MiB; client sent max "
        f"{max(r.body_sent for r in results) / MiB:.1f} MiB"
    )


def test_an_endless_chunked_upload_is_cut_off_past_the_limit(served: Served) -> None:
    before = len(served.reached)
    with PeakRss() as rss:
        result = upload(served.port, post_head("/slack/events", length=None), chunked(HUGE))
    assert result.status == 413
    assert result.answered_after < 1.0
    # What the kernel's socket buffers absorbed (a few MiB; more on hosts tuned for bulk
    # transfer), then the server hung up.
    assert result.body_sent < HUGE // 3
    assert rss.growth < 20 * MiB, f"RSS grew by {rss.growth / MiB:.1f} MiB"
    assert len(served.reached) == before
    print(
        f"\n150 MB chunked: 413 after {result.answered_after * 1000:.1f} ms; client sent "
        f"{result.body_sent / MiB:.1f} MiB; RSS +{rss.growth / MiB:.1f} MiB"
    )


def test_a_trickled_body_gets_408(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    def trickle() -> Iterator[bytes]:
        for _ in range(100):
            time.sleep(0.05)  # the client is slow: that is the scenario
            yield b"x" * 10

    before = len(served.reached)
    result = upload(served.port, post_head("/slack/events", length=1000), trickle())
    assert result.status == 408
    assert TIMEOUT_S * 0.9 < result.answered_after < TIMEOUT_S + 1.0
    assert b"0.5 s" in result.response
    assert len(served.reached) == before
    refusals = [r for r in caplog.records if r.name == "handlers.front_door"]
    assert [getattr(r, "status", None) for r in refusals] == [408]


@pytest.mark.parametrize("size", [0, 1, 64 * 1024 + 1, LIMIT])
def test_bodies_within_the_limit_reach_the_app_intact(served: Served, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    with httpx.Client(base_url=served.url) as http:
        answer = http.post("/slack/events", content=body)
        streamed = http.post("/slack/events", content=iter([body[: size // 2], body[size // 2 :]]))
    for echoed in (answer, streamed):
        assert echoed.status_code == 200
        assert echoed.content == body
        assert echoed.headers["x-sha256"] == hashlib.sha256(body).hexdigest()
    # One byte more is refused, declared or streamed. (Read concurrently: httpx writes the whole
    # body before reading, and the server's close resets a connection still sending.)
    over = body + b"!" * (LIMIT - size + 1)
    assert (
        upload(served.port, post_head("/slack/events", length=len(over)), iter([over])).status
        == 413
    )
    framed = iter([f"{len(over):x}\r\n".encode() + over + b"\r\n0\r\n\r\n"])
    assert upload(served.port, post_head("/slack/events", length=None), framed).status == 413


def test_a_malformed_content_length_is_a_400_and_the_server_carries_on(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n")
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")  # uvicorn's parser refuses it before the app
    assert httpx.get(served.url + "/healthz").status_code == 200


def test_uvicorn_limits_bound_headers() -> None:
    limits = uvicorn_limits(ServerSettings(limit_concurrency=64, keep_alive_timeout=2.0))
    assert limits["limit_concurrency"] == 64 and limits["timeout_keep_alive"] == 2.0
    config = uvicorn.Config(
        lambda *a: None, log_config=None, **limits
    )  # every key is a uvicorn option
    assert config.h11_max_incomplete_event_size == limits["h11_max_incomplete_event_size"]


def test_headers_growing_past_the_cap_are_refused(served: Served) -> None:
    # Unfinished headers over 16 KiB: the server answers without waiting for their end.
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")


# --- the middleware alone (ASGI calls, no server) --------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            self.calls.append(scope["type"].encode())
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append(body)
        after = await receive()
        assert after == {"type": "http.disconnect"}  # passed through once the body is replayed
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(
    app: Any, *, path: str, headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = [*messages, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent


def body_of(message: bytes) -> dict[str, Any]:
    return {"type": "http.request", "body": message, "more_body": False}


@pytest.mark.parametrize(
    "value", [b"12abc", b"-1", b"", b" ", b"1e3", b"0x10", b"\xd9\xa3", b"5, 6", b"+5"]
)
def test_malformed_content_length_is_a_400(value: bytes) -> None:
    app = Recorder()
    limited = BodyLimit(app, prefixes=PREFIXES, max_bytes=100, timeout=1)
    sent = call(
        limited,
        path="/webhooks/alerts",
        headers=[(b"content-length", value)],
        messages=[body_of(b"{}")],
    )
    assert sent[0]["status"] == 400 and (b"connection", b"close") in sent[0]["headers"]
    assert b"Content-Length" in sent[1]["body"] and app.calls == []


@pytest.mark.parametrize(
    ("value", "status"),
    [(b"101", 413), (b"9" * 5000, 413), (b"100", 200), (b"100, 100", 200), (b"0" * 30 + b"3", 200)],
)
def test_declared_sizes(value: bytes, status: int) -> None:
    app = Recorder()
    limited = BodyLimit(app, prefixes=PREFIXES, max_bytes=100, timeout=1)
    sent = call(
        limited, path="/slack/events", headers=[(b"content-length", value)], messages=[body_of(b"")]
    )
    assert sent[0]["status"] == status


def test_other_paths_and_scopes_pass_through_untouched() -> None:
    app = Recorder()
    limited = BodyLimit(app, prefixes=PREFIXES, max_bytes=10, timeout=1)
    sent = call(limited, path="/metrics", headers=[], messages=[body_of(b"x" * 1000)])
    assert sent[0]["status"] == 200 and app.calls == [b"x" * 1000]

    async def lifespan() -> None:
        async def nothing() -> dict[str, Any]:
            return {}

        async def ignore(message: Any) -> None:
            return None

        await limited({"type": "lifespan"}, nothing, ignore)

    asyncio.run(lifespan())
    assert app.calls[-1] == b"lifespan"


def test_a_client_gone_mid_body_reaches_nothing_and_gets_nothing() -> None:
    app = Recorder()
    limited = BodyLimit(app, prefixes=PREFIXES, max_bytes=100, timeout=1)
    sent = call(
        limited,
        path="/slack/events",
        headers=[],
        messages=[{"type": "http.request", "body": b"abc", "more_body": True}],
    )
    assert sent == [] and app.calls == []


def test_the_count_stops_at_the_limit_whatever_the_chunks() -> None:
    app = Recorder()
    limited = BodyLimit(app, prefixes=PREFIXES, max_bytes=10, timeout=1)
    parts = [{"type": "http.request", "body": b"abcd", "more_body": True} for _ in range(3)]
    sent = call(limited, path="/slack/events", headers=[], messages=parts)
    assert sent[0]["status"] == 413 and app.calls == []
    exact = [*parts[:2], {"type": "http.request", "body": b"ab", "more_body": False}]
    sent = call(limited, path="/slack/events", headers=[], messages=exact)
    assert sent[0]["status"] == 200 and app.calls == [b"abcdabcdab"]
