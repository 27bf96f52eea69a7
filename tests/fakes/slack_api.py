"""A local stand-in for Slack: the Web API over HTTP and Socket Mode over a real WebSocket.

The real slack_sdk / slack-bolt clients talk to it unchanged (``SlackSettings.api_url`` points
here), the way bolt-python tests itself (`tests/mock_web_api_server`): every Web API call is
recorded (method, parameters, token) and answered like Slack does — ``auth.test``,
``chat.postMessage`` / ``update`` / ``postEphemeral`` / ``delete``, the streaming methods,
``assistant.threads.*``, ``oauth.v2.access``, the three steps of ``files_upload_v2``
(``files.getUploadURLExternal``, the upload itself to the URL it hands out, and
``files.completeUploadExternal``, which shares the file as a message in the channel or thread),
and ``apps.connections.open``, which hands out the ``ws://`` URL of this fake's own WebSocket
server. A test can script answers per method
(a 429 with ``Retry-After``, ``channel_not_found``, ``unknown_method`` …), push Socket Mode
envelopes and read the acknowledgements the client sends back.

The messages the bot's calls create are kept per channel, so ``conversations.history`` /
``conversations.replies`` answer what Slack would, and `drop_after` lets a call take effect but
hang up before answering (Slack got the post, the client never heard back).

Payload shapes follow Slack's reference pages (docs.slack.dev/reference/methods/*, the Socket
Mode protocol at api.slack.com/apis/connections/socket).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server as WsServer
from websockets.sync.server import ServerConnection, serve

BOT_TOKEN = "xoxb-fake-T1"
APP_TOKEN = "xapp-fake-A1"
OAUTH_BOT_TOKEN = "xoxb-fake-T2"

# The JSON-encoded parameters slack_sdk sends as form fields.
_JSON_FIELDS = ("blocks", "attachments", "chunks", "prompts", "metadata")

# Slack's documented defaults for the `limit` of the two history methods.
_HISTORY_LIMIT = 100
_REPLIES_LIMIT = 1000

Message = dict[str, Any]


@dataclass(frozen=True)
class Team:
    team_id: str
    bot_user_id: str
    bot_id: str
    name: str = "Fake workspace"


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)
    status: int = 200
    response: dict[str, Any] | str = field(default_factory=dict)
    dropped: bool = False  # took effect, but the connection was closed instead of answering

    @property
    def ts(self) -> str | None:
        """The ``ts`` Slack answered (a posted message's id)."""
        return self.response.get("ts") if isinstance(self.response, dict) else None


@dataclass
class _Scripted:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str]


class FakeSlack:
    """Start with `start()` (or use as a context manager); `reset()` between tests."""

    def __init__(self) -> None:
        self.teams: dict[str, Team] = {}
        self._calls: list[Call] = []
        self._scripts: dict[str, deque[_Scripted]] = defaultdict(deque)
        self._lock = threading.Condition()
        self._ts = 1_700_000_000_000_100
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http.daemon_threads = True
        self._ws: WsServer = serve(self._ws_session, "127.0.0.1", 0)
        self._sockets: list[ServerConnection] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self._threads: list[threading.Thread] = []
        self._channels: dict[str, list[Message]] = defaultdict(list)  # each sorted by ts
        self._streaming: set[tuple[str, str]] = set()
        self._drops: dict[str, int] = defaultdict(int)
        self.files: dict[str, dict[str, Any]] = {}  # file id → name, length, title, data …
        self.reset()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        for target, name in (
            (self._http.serve_forever, "fake-slack-http"),
            (self._ws.serve_forever, "fake-slack-ws"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._ws.shutdown()
        self._http.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._scripts.clear()
            self._acks.clear()
            self._channels.clear()
            self._streaming.clear()
            self._drops.clear()
            self.files.clear()
            self.teams = {
                BOT_TOKEN: Team("T1", "UBOT", "BBOT"),
                APP_TOKEN: Team("T1", "UBOT", "BBOT"),
            }

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api"

    @property
    def ws_url(self) -> str:
        host, port = self._ws.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket={uuid.uuid4()}"

    def response_url(self, name: str = "cmd") -> str:
        return f"{self.base_url}/respond/{name}"

    # --- scripting and inspection --------------------------------------------------------------

    def script(
        self,
        method: str,
        *,
        status: int = 200,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` this way instead of the normal answer."""
        answer = _Scripted(status, body if body is not None else {"ok": True}, headers or {})
        with self._lock:
            self._scripts[method].extend([answer] * times)

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        self.script(
            method,
            status=429,
            body={"ok": False, "error": "ratelimited"},
            headers={"Retry-After": str(retry_after)},
            times=times,
        )

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        self.script(method, body={"ok": False, "error": error}, times=times)

    def drop_after(self, method: str, *, times: int = 1) -> None:
        """The next `times` calls of `method` take effect, then the connection closes unanswered."""
        with self._lock:
            self._drops[method] += times

    def messages(self, channel: str | None = None) -> list[Message]:
        """The current messages (of `channel`, or of every channel), oldest first."""
        with self._lock:
            channels = [channel] if channel is not None else list(self._channels)
            found = [
                self._view(name, message, metadata=True, with_channel=True)
                for name in channels
                for message in self._channels.get(name, [])
            ]
        return sorted(found, key=lambda m: _ts_value(m["ts"]))

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent (when the bot posted it) and the replies of the thread holding `ts`."""
        with self._lock:
            return [
                self._view(channel, m, metadata=True, with_channel=True)
                for m in self._thread(channel, ts)
            ]

    def wait_until(self, predicate: Callable[[FakeSlack], bool], timeout: float = 10.0) -> None:
        """Block until `predicate(self)` holds; it is re-checked whenever a call is recorded."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    name = getattr(predicate, "__qualname__", repr(predicate))
                    seen = [c.method for c in self._calls]
                    posted = [(m["channel"], m["ts"], m["text"][:40]) for m in self.messages()]
                    raise AssertionError(
                        f"{name} did not hold within {timeout} s; calls {seen}; messages {posted}"
                    )
                self._lock.wait(remaining)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[Call]:
        return [c for c in self.calls if c.method == method and (not ok_only or c.status == 200)]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        *,
        timeout: float = 10.0,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until `count` calls of `method` (matching `where`) arrived; fail otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    c for c in self._calls if c.method == method and (where is None or where(c))
                ]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self._calls]
                    raise AssertionError(
                        f"expected {count} call(s) to {method} within {timeout} s; saw {seen}"
                    )
                self._lock.wait(remaining)

    def next_ts(self) -> str:
        with self._lock:
            self._ts += 100
            return f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"

    # --- Socket Mode ----------------------------------------------------------------------------

    def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._sockets:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("no Socket Mode client connected")
                self._lock.wait(remaining)

    def send_envelope(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
    ) -> str:
        """Push one envelope (``slash_commands`` / ``events_api`` / ``interactive``)."""
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        with self._lock:
            connection = self._sockets[-1]
        connection.send(json.dumps(envelope))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while envelope_id not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"envelope {envelope_id} was not acknowledged")
                self._lock.wait(remaining)
            return self._acks[envelope_id]

    def _ws_session(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": "A1"},
                }
            )
        )
        with self._lock:
            self._sockets.append(connection)
            self._lock.notify_all()
        try:
            for message in connection:
                data = json.loads(message)
                if "envelope_id" in data:
                    with self._lock:
                        self._acks[str(data["envelope_id"])] = data
                        self._lock.notify_all()
        except ConnectionClosed:
            pass  # slack_sdk's client drops the socket without a close frame when it shuts down
        finally:
            with self._lock:
                self._sockets.remove(connection)

    # --- the Web API ------------------------------------------------------------------------------

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> _Scripted:
        with self._lock:
            scripted = self._scripts[method].popleft() if self._scripts[method] else None
        if scripted is not None:
            return scripted
        if method == "oauth.v2.access":
            return _Scripted(200, self._oauth_access(params), {})
        team = self.teams.get(token or "")
        if team is None:
            return _Scripted(200, {"ok": False, "error": "invalid_auth"}, {})
        if method == "apps.connections.open":
            if not str(token).startswith("xapp-"):
                return _Scripted(200, {"ok": False, "error": "not_allowed_token_type"}, {})
            return _Scripted(200, {"ok": True, "url": self.ws_url}, {})
        if method == "auth.test":
            body = {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": team.name,
                "user": "pipebot",
                "team_id": team.team_id,
                "user_id": team.bot_user_id,
                "bot_id": team.bot_id,
                "is_enterprise_install": False,
            }
            return _Scripted(200, body, {})
        if method == "chat.postEphemeral":
            return _Scripted(200, {"ok": True, "message_ts": self.next_ts()}, {})
        if method == "files.getUploadURLExternal":
            return _Scripted(200, self._upload_url(params), {})
        if method == "files.completeUploadExternal":
            with self._lock:
                return _Scripted(200, self._complete_upload(params, team), {})
        handler = self._STATEFUL.get(method)
        if handler is None:
            return _Scripted(200, {"ok": True}, {})
        channel = str(params.get("channel") or params.get("channel_id") or "")
        if not channel:
            return _Scripted(200, {"ok": False, "error": "channel_not_found"}, {})
        with self._lock:
            return _Scripted(200, handler(self, channel, params, team), {})

    # --- message state (every method below runs under self._lock) -------------------------------

    def _add(self, channel: str, params: dict[str, Any], team: Team, text: str) -> Message:
        message: Message = {
            "type": "message",
            "ts": self.next_ts(),
            "text": text,
            "user": team.bot_user_id,
            "bot_id": team.bot_id,
            "team": team.team_id,
        }
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        _edit(message, params)
        self._channels[channel].append(message)
        return message

    def _post(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        message = self._add(channel, params, team, str(params.get("text") or ""))
        view = self._view(channel, message, metadata=True)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": view}

    def _update(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        message = self._find(channel, params.get("ts"))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if "text" in params:
            message["text"] = str(params["text"] or "")
        _edit(message, params)
        view = self._view(channel, message, metadata=True)
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "text": view["text"],
            "message": view,
        }

    def _delete(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        message = self._find(channel, params.get("ts"))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        self._channels[channel].remove(message)
        self._streaming.discard((channel, message["ts"]))
        return {"ok": True, "channel": channel, "ts": message["ts"]}

    def _start_stream(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        message = self._add(channel, params, team, _streamed_text(params))
        self._streaming.add((channel, message["ts"]))
        return {"ok": True, "channel": channel, "ts": message["ts"]}

    def _append_stream(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        message = self._find(channel, params.get("ts"))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if (channel, message["ts"]) not in self._streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message["text"] += _streamed_text(params)
        return {"ok": True, "channel": channel, "ts": message["ts"]}

    def _stop_stream(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        answer = self._append_stream(channel, params, team)
        if not answer["ok"]:
            return answer
        message = self._find(channel, answer["ts"])
        assert message is not None
        _edit(message, params)
        self._streaming.discard((channel, message["ts"]))
        return {**answer, "message": self._view(channel, message, metadata=True)}

    def _history(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        try:
            oldest = _ts_value(params.get("oldest") or "0")
            latest = _ts_value(params.get("latest") or "Infinity")
        except InvalidOperation:
            return {"ok": False, "error": "invalid_arguments"}
        inclusive = _flag(params.get("inclusive"))

        def in_range(ts: Decimal) -> bool:
            return oldest <= ts <= latest if inclusive else oldest < ts < latest

        top_level = [
            m
            for m in reversed(self._channels.get(channel, []))
            if "thread_ts" not in m and in_range(_ts_value(m["ts"]))
        ]
        return self._page(channel, top_level, params, _HISTORY_LIMIT, newest_first=True)

    def _replies(self, channel: str, params: dict[str, Any], team: Team) -> dict[str, Any]:
        thread = self._thread(channel, str(params.get("ts") or ""))
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(channel, thread, params, _REPLIES_LIMIT, newest_first=False)

    def _upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        """Step 1 of an upload: a file id and the URL to send its bytes to."""
        try:
            length = int(params.get("length") or "")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not params.get("filename"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        with self._lock:
            self.files[file_id] = {
                "id": file_id,
                "name": str(params["filename"]),
                "length": length,
                "alt_txt": params.get("alt_txt"),
                "data": None,
            }
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.base_url}/upload/{file_id}"}

    def _receive_upload(self, file_id: str, data: bytes) -> bool:
        """Step 2: the bytes, which must be as long as step 1 said."""
        with self._lock:
            entry = self.files.get(file_id)
            if entry is None or entry["length"] != len(data):
                return False
            entry["data"] = data
            return True

    def _complete_upload(self, params: dict[str, Any], team: Team) -> dict[str, Any]:
        """Step 3: title the uploaded files and share them in the channel (or its thread)."""
        try:
            wanted = json.loads(str(params.get("files") or "[]"))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        done = []
        for spec in wanted if isinstance(wanted, list) else []:
            entry = self.files.get(str(spec.get("id")))
            if entry is None or entry["data"] is None:
                return {"ok": False, "error": "file_not_found"}
            entry["title"] = spec.get("title") or entry["name"]
            done.append(entry)
        if not done:
            return {"ok": False, "error": "invalid_arguments"}
        channel = str(params.get("channel_id") or "")
        if channel:
            shown = [
                {"id": f["id"], "name": f["name"], "title": f["title"], "mimetype": "image/png"}
                for f in done
            ]
            message = self._add(channel, params, team, str(params.get("initial_comment") or ""))
            message["files"] = shown
            message["upload"] = True
            for entry in done:
                entry["channel"], entry["ts"] = channel, message["ts"]
                entry["thread_ts"] = message.get("thread_ts")
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in done]}

    _STATEFUL: ClassVar[
        dict[str, Callable[[FakeSlack, str, dict[str, Any], Team], dict[str, Any]]]
    ] = {
        "chat.postMessage": _post,
        "chat.update": _update,
        "chat.delete": _delete,
        "chat.startStream": _start_stream,
        "chat.appendStream": _append_stream,
        "chat.stopStream": _stop_stream,
        "conversations.history": _history,
        "conversations.replies": _replies,
    }

    def _page(
        self,
        channel: str,
        found: list[Message],
        params: dict[str, Any],
        default_limit: int,
        *,
        newest_first: bool,
    ) -> dict[str, Any]:
        if params.get("cursor"):
            start = _cursor_ts(str(params["cursor"]))
            if start is None:
                return {"ok": False, "error": "invalid_cursor"}
            # A ts cursor (like Slack's "next_ts:…") survives messages deleted in between pages.
            found = [
                m
                for m in found
                if (_ts_value(m["ts"]) <= start if newest_first else _ts_value(m["ts"]) >= start)
            ]
        try:
            limit = int(params.get("limit") or default_limit) or default_limit
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        page, rest = found[:limit], found[limit:]
        metadata = _flag(params.get("include_all_metadata"))
        next_cursor = _cursor(rest[0]["ts"]) if rest else ""
        return {
            "ok": True,
            "messages": [self._view(channel, m, metadata=metadata) for m in page],
            "has_more": bool(rest),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _find(self, channel: str, ts: Any) -> Message | None:
        return next((m for m in self._channels.get(channel, []) if m["ts"] == ts), None)

    def _thread(self, channel: str, ts: str) -> list[Message]:
        # Like Slack, the ts of any message in the thread finds the whole thread; the parent may be
        # a person's message this fake never saw, leaving only the bot's replies.
        message = self._find(channel, ts)
        root = message.get("thread_ts", ts) if message is not None else ts
        return [m for m in self._channels.get(channel, []) if root in (m["ts"], m.get("thread_ts"))]

    def _view(
        self, channel: str, message: Message, *, metadata: bool, with_channel: bool = False
    ) -> Message:
        """A copy of `message` as Slack shows it: thread parents carry their reply summary."""
        view = copy.deepcopy(message)
        if not metadata:
            view.pop("metadata", None)
        if "thread_ts" not in message:
            replies = [
                m for m in self._channels.get(channel, []) if m.get("thread_ts") == message["ts"]
            ]
            if replies:
                view["thread_ts"] = message["ts"]
                view["reply_count"] = len(replies)
                view["latest_reply"] = replies[-1]["ts"]
        if with_channel:
            view["channel"] = channel
        return view

    def _oauth_access(self, params: dict[str, Any]) -> dict[str, Any]:
        team = Team("T2", "UBOT2", "BBOT2", name="Second workspace")
        with self._lock:
            self.teams[OAUTH_BOT_TOKEN] = team
        return {
            "ok": True,
            "app_id": "A1",
            "authed_user": {"id": "U2ADMIN"},
            "scope": "app_mentions:read,chat:write,commands",
            "token_type": "bot",
            "access_token": OAUTH_BOT_TOKEN,
            "bot_user_id": team.bot_user_id,
            "team": {"id": team.team_id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _take_drop(self, method: str) -> bool:
        with self._lock:
            if self._drops.get(method, 0) <= 0:
                return False
            self._drops[method] -= 1
            return True

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)
            self._lock.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the recorded calls are the log."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.startswith("/upload/"):  # step 2 of files_upload_v2: raw bytes
                    file_id = self.path.removeprefix("/upload/").split("?")[0]
                    stored = fake._receive_upload(file_id, self.rfile.read(length))
                    fake._record(Call("upload", {"file_id": file_id, "bytes": length}, None))
                    self._send(200 if stored else 400, f"OK - {length}", {})
                    return
                raw = self.rfile.read(length).decode()
                query = _params(urlsplit(self.path).query, "")
                params = {**query, **_params(raw, self.headers.get("Content-Type") or "")}
                if self.path.startswith("/respond/"):
                    fake._record(Call("response_url", params, None))
                    self._send(200, "ok", {})
                    return
                method = self.path.removeprefix("/api/").split("?")[0]
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ").strip() or params.get("token")
                answer = fake._answer(method, params, token)
                dropped = fake._take_drop(method)
                fake._record(
                    Call(
                        method,
                        params,
                        token,
                        status=answer.status,
                        response=answer.body,
                        dropped=dropped,
                    )
                )
                if dropped:
                    # Hang up without a status line: the server closes the socket once we return,
                    # so the client fails at once (RemoteDisconnected) instead of timing out.
                    self.close_connection = True
                    return
                self._send(answer.status, answer.body, answer.headers)

            do_GET = do_POST  # Slack accepts either verb; the parameters may sit in the query

            def _send(
                self, status: int, body: dict[str, Any] | str, headers: dict[str, str]
            ) -> None:
                text = body if isinstance(body, str) else json.dumps(body)
                data = text.encode()
                self.send_response(status)
                ctype = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", f"{ctype}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _params(raw: str, content_type: str) -> dict[str, Any]:
    if "application/json" in content_type:
        loaded = json.loads(raw or "{}")
        return loaded if isinstance(loaded, dict) else {}
    params: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(params[name])
    return params


def _edit(message: Message, params: dict[str, Any]) -> None:
    """Apply the blocks / metadata a post, update or stopStream carried."""
    if params.get("blocks") is not None:
        message["blocks"] = copy.deepcopy(params["blocks"])
    metadata = params.get("metadata")
    if isinstance(metadata, dict):
        message["metadata"] = {
            "event_type": metadata.get("event_type"),
            "event_payload": copy.deepcopy(metadata.get("event_payload") or {}),
        }


def _streamed_text(params: dict[str, Any]) -> str:
    """The markdown a streaming call adds: ``markdown_text`` or slack_sdk's markdown chunks."""
    text = str(params.get("markdown_text") or "")
    for chunk in params.get("chunks") or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += str(chunk.get("text") or "")
    return text


def _ts_value(ts: Any) -> Decimal:
    """A ts as a number: "1700000000.000100" strings do not compare right as text in general."""
    return Decimal(str(ts))


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _cursor_ts(cursor: str) -> Decimal | None:
    try:
        decoded = base64.b64decode(cursor, validate=True).decode()
        return (
            _ts_value(decoded.removeprefix("next_ts:")) if decoded.startswith("next_ts:") else None
        )
    except (binascii.Error, UnicodeDecodeError, InvalidOperation):
        return None
