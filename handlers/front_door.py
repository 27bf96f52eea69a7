"""The HTTP front door of `pipebot serve`: bounds on what a client may send before pipebot
spends anything on it.

Two layers, because neither covers everything alone:

- `BodyLimit` (ASGI middleware, in front of ``/slack/`` and ``/webhooks/``) bounds the request
  *body*: its size (``Content-Length`` checked before a byte is read, then counted while
  streaming) and the time a client may take to send it. The body is buffered here, on the event
  loop — reading is cheap — so the routes behind it get a complete, bounded body; parsing it is
  their job, off the loop.
- `uvicorn_limits` bounds the *connection*: header bytes, idle keep-alive, how many connections
  and requests run at once.

A refusal is a small JSON body ``{"error": "..."}`` with ``Connection: close`` (the rest of an
oversized upload is never read; closing is the only way not to) and one warning log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.settings import ServerSettings

log = logging.getLogger(__name__)

# h11's own default, made explicit. Slack's and the webhook senders' headers are well under
# 4 KiB; raising it only makes room for abuse (each connection may buffer this much before a
# request exists).
MAX_HEADER_BYTES = 16 * 1024
# More digits than this cannot be a size within any limit (and int() of thousands of digits is
# itself a ValueError in Python 3.11+).
_MAX_LENGTH_DIGITS = 18
_TOO_MANY_DIGITS: int = 10**_MAX_LENGTH_DIGITS
_LOGGED_PATH_CHARS = 200
_MALFORMED = -1


class BodyLimit:
    """Refuse request bodies that are too large (413), too slow (408) or declared with a
    malformed ``Content-Length`` (400) on the paths under `prefixes`; pass everything else
    (other paths, lifespan, websockets) through untouched.

    An accepted body is handed on whole: the app's ``receive`` replays it as one
    ``http.request`` message, then passes the server's own messages (``http.disconnect``)
    through. A client that disconnects mid-body gets nothing and the app is not called.
    """

    def __init__(
        self, app: ASGIApp, *, prefixes: tuple[str, ...], max_bytes: int, timeout: float
    ) -> None:
        if max_bytes < 0 or timeout <= 0:
            raise ValueError("max_bytes must be >= 0 and timeout > 0")
        self.app = app
        self.prefixes = prefixes
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _route_path(scope).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == _MALFORMED:
            await self._refuse(
                scope,
                send,
                400,
                "malformed Content-Length header; send the body's size in bytes as one "
                "decimal number, or use chunked transfer encoding",
            )
            return
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, 413, self._too_large())
            return

        chunks: list[bytes] = []
        received = 0
        outcome = "complete"
        with anyio.move_on_after(self.timeout) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    outcome = "disconnected"
                    break
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_bytes:
                    outcome = "too large"
                    break
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if deadline.cancelled_caught:
            await self._refuse(
                scope,
                send,
                408,
                f"request body not received within {self.timeout:g} s; send it at once "
                "(operators: PIPEBOT_SERVER__BODY_TIMEOUT)",
            )
            return
        if outcome == "too large":
            await self._refuse(scope, send, 413, self._too_large())
            return
        if outcome == "disconnected":
            log.info(
                "client disconnected before sending the whole body",
                extra={"path": _logged_path(scope), "received_bytes": received},
            )
            return

        body = b"".join(chunks)
        del chunks
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return (
            f"request body is larger than {self.max_bytes} bytes; send less "
            "(operators: PIPEBOT_SERVER__MAX_BODY_BYTES)"
        )

    async def _refuse(self, scope: Scope, send: Send, status: int, reason: str) -> None:
        client = scope.get("client")
        log.warning(
            "request refused",
            extra={
                "path": _logged_path(scope),
                "status": status,
                "reason": reason,
                "client": client[0] if client else "",
            },
        )
        payload = json.dumps({"error": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    # The unread rest of the body stays on the wire: the connection cannot be
                    # reused, and closing it is what stops the upload.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})


def uvicorn_limits(settings: ServerSettings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config` that bound connections (uvicorn 0.3x+ names).

    What they bound:

    - ``http="h11"``: pinned because ``h11_max_incomplete_event_size`` is an h11 setting; with
      ``httptools`` installed, ``"auto"`` would silently switch parsers and drop the header cap.
    - ``h11_max_incomplete_event_size``: request line plus headers still *incomplete* after a
      read may not exceed 16 KiB (uvicorn answers 400 and closes). A header block that arrives
      complete in one read is parsed whatever its size, so the real ceiling is one socket read
      (asyncio reads up to 256 KiB) — bounded, not tight.
    - ``limit_concurrency``: open connections *or* running requests at once; beyond it every
      new request gets 503 (``/healthz`` included), so a flood degrades into refusals instead
      of memory growth.
    - ``timeout_keep_alive``: seconds an idle connection is kept *after a response*.
    - ``ws="none"``: pipebot serves no WebSockets; an ``Upgrade`` request is an ordinary HTTP
      request (404/405) rather than a handshake with 16 MiB messages.

    What uvicorn does NOT bound (a reverse proxy in front must):

    - the time to send the request line and headers: a connection that trickles header bytes
      (slowloris), or opens and sends nothing, is held open indefinitely — the keep-alive timer
      starts only after a first response — and counts against ``limit_concurrency``, so that
      many such connections make every request, ``/healthz`` too, a 503;
    - request bodies on routes `BodyLimit` does not cover (pipebot's other routes are GETs);
    - connections per client address, request rates, TLS handshakes.

    Behind a proxy, set its client header timeout and body timeout (nginx:
    ``client_header_timeout``, ``client_body_timeout``, ``client_max_body_size``), its
    per-client connection limit, and an upstream keep-alive timeout shorter than
    ``keep_alive_timeout``.
    """
    return {
        "http": "h11",
        "ws": "none",
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.keep_alive_timeout,
    }


def _route_path(scope: Scope) -> str:
    # uvicorn puts root_path in front of path; the prefixes are the app's own routes.
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :]
    return path


def _content_length(scope: Scope) -> int | None:
    """The declared body size, None when absent, or `_MALFORMED`."""
    values: set[str] = set()
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            # RFC 9110 §8.6 tolerates a repeated identical value ("42, 42").
            values.update(part.strip() for part in value.decode("latin-1").split(","))
    if not values:
        return None
    if len(values) != 1:
        return _MALFORMED
    text = values.pop()
    if not (text.isascii() and text.isdigit()):
        return _MALFORMED
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_LENGTH_DIGITS:
        return _TOO_MANY_DIGITS
    return int(digits)


def _logged_path(scope: Scope) -> str:
    return str(scope.get("path", ""))[:_LOGGED_PATH_CHARS]
