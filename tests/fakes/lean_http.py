"""`LeanHandler`: http.server's request handler, reading the request line and headers without
`http.client.parse_headers` (which runs the `email` package's parser, ~0.1 ms a request), for
the REST fakes a benchmark sends thousands of requests to (bench/bench_warehouse_rest.py: the
fake stands for a remote API, so its CPU should not crowd the client's on this machine).

HTTP/1.1 with keep-alive, as the SDKs' pooled connections expect; header names are matched
without regard to case, as `email.message.Message` does (``self.headers.get("Authorization")``).
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

_MAX_LINE = 65536
_MAX_HEADERS = 100


class Headers(dict[str, str]):
    """Request headers by lower-cased name; looked up in any case."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(str(name).lower())


class LeanHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' pooled connections expect
    # Headers and body go out as two writes; with Nagle on, the second waits for the client's
    # delayed ACK (40 ms a response).
    disable_nagle_algorithm = True

    def parse_request(self) -> bool:
        self.command = None  # type: ignore[assignment]  # as http.server sets it on failure
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({self.requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        headers = Headers()
        for _ in range(_MAX_HEADERS):
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = str(line, "iso-8859-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        self.close_connection = (
            self.request_version != "HTTP/1.1" or headers.get("connection", "").lower() == "close"
        )
        return True

    def respond(self, status: int, data: bytes, content_type: str) -> None:
        """The status line, headers and body in one write (http.server's send_response
        formats a Date and a Server header and writes headers and body apart)."""
        reason = _REASONS.get(status, "")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(data)}\r\n"
            + ("Connection: close\r\n" if self.close_connection else "")
            + "\r\n"
        )
        self.wfile.write(head.encode("latin-1") + data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


_REASONS = {s.value: s.phrase for s in HTTPStatus}


class LeanServer(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops the connections of a burst of parallel clients, who
    # then wait a second to retry the SYN.
    request_queue_size = 128
    daemon_threads = True
    fake: Any  # the `LeanFake` answering


class LeanFake:
    """A fake API's life: served on a free local port by `handler` in a thread, the requests
    it saw (method, path) recorded under a lock. Subclasses answer; handlers reach them as
    ``self.server.fake``."""

    handler: type[LeanHandler]
    name = "fake-api"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str]] = []
        self._server: LeanServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._server = LeanServer(("127.0.0.1", 0), self.handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._requests)

    @property
    def served(self) -> int:
        with self._lock:
            return len(self._requests)
