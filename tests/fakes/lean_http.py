"""`LeanHandler`: http.server's request handler, reading the request line and headers without
`http.client.parse_headers` (which runs the `email` package's parser, ~0.1 ms a request), for
the REST fakes a benchmark sends thousands of requests to (bench/bench_warehouse_rest.py: the
fake stands for a remote API, so its CPU should not crowd the client's on this machine).

HTTP/1.1 with keep-alive, as the SDKs' pooled connections expect; header names are matched
without regard to case, as `email.message.Message` does (``self.headers.get("Authorization")``).
"""

from __future__ import annotations

from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

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
