"""A local fake of Anthropic's Messages API, driven through the real SDK client via `base_url`.

A real HTTP server on ``127.0.0.1:<free port>`` (one thread) that answers ``POST /v1/messages``
and ``POST /v1/messages/count_tokens`` the way the API does, from a script::

    with FakeAnthropic() as api:
        api.script(
            message(tool_use("get_task_log", {"dag_id": "d", "task_id": "t", "try_number": 1})),
            overloaded(),                       # the SDK retries this one
            message(text("The task failed because …")),
        )
        agent = build_agent(settings_with(base_url=api.url), store, Redactor())
        agent.answer(...)
        assert api.bodies[1]["messages"][-1]["content"][0]["type"] == "tool_result"

**Scripts.** Turns are served in order, one per ``/v1/messages`` request (retries included);
``api.on(n, turn)`` pins a turn to request *n* (1-based) and ``api.otherwise(fn)`` answers any
request the script does not cover. A turn is a `message(...)` body, an `Error`, or a function
of the `Recorded` request returning one of those. A request nothing answers is a failure:
the fake replies 500 with ``x-should-retry: false`` and records it in ``failures``;
`assert_clean` (called by the test fixture) fails the test on any failure or unused turn.

**Checks.** Like the API, the fake rejects (400, and records as a failure) requests without
``anthropic-version`` or authentication, with sampling parameters (``temperature``, ``top_p``,
``top_k``; removed in API 2026-10-21), with a first message that is not the user's, with
``tool_use`` blocks not answered by matching ``tool_result`` blocks at the start of the next
user message, or with more than four ``cache_control`` breakpoints.

**Usage.** Token counts are estimates: one token per four characters of each block's canonical
JSON (the real tokenizer is not public). Prompt caching follows the documented model: the
prefix is tools → system → messages; each ``cache_control`` breakpoint writes the prefix up to
it (when at least ``min_cacheable_tokens`` long); a later request reads the longest cached
prefix that ends within 20 blocks before one of its breakpoints. The model id is part of every
cache key, and ``tool_choice`` of the message-level entries (changing it keeps tools and system
cached). ``usage`` reports ``cache_read_input_tokens``, ``cache_creation_input_tokens`` and the
uncached rest as ``input_tokens``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

__all__ = [
    "Error",
    "FakeAnthropic",
    "Recorded",
    "auth_failed",
    "message",
    "overloaded",
    "rate_limited",
    "text",
    "tool_use",
]

CHARS_PER_TOKEN = 4
LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4
_ids = itertools.count(1)


# --- building responses --------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, tool_input: Mapping[str, Any], *, id: str | None = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": id or f"toolu_fake{next(_ids):04d}",
        "name": name,
        "input": dict(tool_input),
    }


def message(
    *blocks: dict[str, Any],
    stop_reason: str | None = None,
    stop_details: dict[str, Any] | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A Messages API response body; the stop reason defaults to what the blocks imply."""
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    body: dict[str, Any] = {"content": list(blocks), "stop_reason": stop_reason}
    if stop_details is not None:
        body["stop_details"] = stop_details
    if usage is not None:
        body["usage"] = usage
    return body


@dataclass(frozen=True)
class Error:
    """An HTTP error answer in the API's error shape."""

    status: int
    type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}


def overloaded(retry_after: float = 0.001) -> Error:
    return Error(529, "overloaded_error", "Overloaded", _retry_after(retry_after))


def rate_limited(retry_after: float = 0.001) -> Error:
    return Error(429, "rate_limit_error", "Number of requests exceeded", _retry_after(retry_after))


def auth_failed(status: int = 401) -> Error:
    kind = "authentication_error" if status == 401 else "permission_error"
    return Error(status, kind, "invalid x-api-key")


def _retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(int(seconds * 1000))}


# --- requests as recorded ------------------------------------------------------------------


@dataclass
class Recorded:
    index: int  # 1-based position among /v1/messages requests (0 for other paths)
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any] | None
    status: int = 0
    response: dict[str, Any] | None = None


Turn: TypeAlias = dict[str, Any] | Error | Callable[[Recorded], "dict[str, Any] | Error"]


# --- prompt-cache accounting ---------------------------------------------------------------


def _tokens(value: Any) -> int:
    return math.ceil(len(_canonical(value)) / CHARS_PER_TOKEN)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _without_marker(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


@dataclass(frozen=True)
class _Prefix:
    """The request's cacheable blocks in prefix order, with running hashes and token sums."""

    hashes: list[str]
    tokens: list[int]  # cumulative tokens up to and including each block
    breakpoints: list[int]
    static_end: int  # index of the last tools/system block (-1 when none)


def prefix_of(body: Mapping[str, Any]) -> _Prefix:
    model = str(body.get("model", ""))
    blocks: list[tuple[str, Any, bool]] = []  # (scope, block, has marker)
    for tool in body.get("tools") or ():
        blocks.append(("tools", tool, "cache_control" in tool))
    system = body.get("system")
    if isinstance(system, str):
        blocks.append(("system", {"type": "text", "text": system}, False))
    elif isinstance(system, list):
        blocks.extend(("system", b, "cache_control" in b) for b in system)
    static_end = len(blocks) - 1
    choice = _canonical(body.get("tool_choice"))
    for turn in body.get("messages") or ():
        content = turn.get("content")
        items = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in items or ():
            marked = isinstance(block, dict) and "cache_control" in block
            blocks.append(("messages", {"role": turn.get("role"), "block": block}, marked))
    running = hashlib.sha256(model.encode())
    hashes: list[str] = []
    tokens: list[int] = []
    total = 0
    choice_mixed = False
    for scope, block, _ in blocks:
        if scope == "messages" and not choice_mixed:
            running.update(choice.encode())
            choice_mixed = True
        clean = _without_marker(block)
        if scope == "messages":
            clean = {"role": block["role"], "block": _without_marker(block["block"])}
        running.update(_canonical(clean).encode())
        hashes.append(running.hexdigest())
        total += _tokens(clean)
        tokens.append(total)
    marks = [i for i, (_, _, marked) in enumerate(blocks) if marked]
    return _Prefix(hashes=hashes, tokens=tokens, breakpoints=marks, static_end=static_end)


class _PromptCache:
    def __init__(self, min_tokens: int) -> None:
        self._min = min_tokens
        self._entries: set[str] = set()
        self._lock = threading.Lock()

    def account(self, prefix: _Prefix) -> tuple[int, int, int]:
        """(uncached input, cache read, cache write) tokens for one request."""
        total = prefix.tokens[-1] if prefix.tokens else 0
        with self._lock:
            read_at = -1
            for mark in prefix.breakpoints:
                for index in range(mark, max(-1, mark - LOOKBACK_BLOCKS - 1), -1):
                    if prefix.hashes[index] in self._entries:
                        read_at = max(read_at, index)
                        break
            read = prefix.tokens[read_at] if read_at >= 0 else 0
            written = 0
            for mark in prefix.breakpoints:
                if prefix.tokens[mark] >= self._min and prefix.hashes[mark] not in self._entries:
                    self._entries.add(prefix.hashes[mark])
                    written = max(written, prefix.tokens[mark] - read)
        return total - read - written, read, written

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --- request checks ------------------------------------------------------------------------


def _problems(headers: Mapping[str, str], body: Mapping[str, Any], *, counting: bool) -> list[str]:
    found: list[str] = []
    if not headers.get("anthropic-version"):
        found.append("missing anthropic-version header")
    if not (headers.get("authorization") or headers.get("x-api-key")):
        found.append("missing authentication")
    for param in ("temperature", "top_p", "top_k"):
        if param in body:
            found.append(f"{param} is not supported by this API version")
    for key in ("model", "messages") if counting else ("model", "max_tokens", "messages"):
        if key not in body:
            found.append(f"{key}: field required")
    messages = body.get("messages") or []
    if messages and messages[0].get("role") != "user":
        found.append("messages: the first message must use the user role")
    marks = sum(1 for tool in body.get("tools") or () if "cache_control" in tool)
    if isinstance(body.get("system"), list):
        marks += sum(1 for b in body["system"] if "cache_control" in b)
    for turn in messages:
        content = turn.get("content")
        if isinstance(content, list):
            marks += sum(1 for b in content if isinstance(b, dict) and "cache_control" in b)
            if any(
                isinstance(b, dict) and b.get("type") == "text" and not b.get("text")
                for b in content
            ):
                found.append("messages: text content blocks must be non-empty")
    if marks > MAX_BREAKPOINTS:
        found.append(f"a maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided")
    for position, turn in enumerate(messages):
        content = turn.get("content")
        if turn.get("role") != "assistant" or not isinstance(content, list):
            continue
        ids = [b["id"] for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
        if not ids or position == len(messages) - 1:
            continue
        following = messages[position + 1]
        answer = following.get("content") if following.get("role") == "user" else None
        answered = [
            str(b.get("tool_use_id"))
            for b in (answer if isinstance(answer, list) else [])[: len(ids)]
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        if sorted(answered) != sorted(ids):
            found.append(
                f"messages.{position + 1}: tool_use ids were found without tool_result blocks "
                "immediately after"
            )
    return found


# --- the server ----------------------------------------------------------------------------


class FakeAnthropic:
    def __init__(
        self,
        *,
        min_cacheable_tokens: int = 1024,
        latency: float = 0.0,
        api_keys: set[str] | None = None,
        models: set[str] | None = None,
    ) -> None:
        self.min_cacheable_tokens = min_cacheable_tokens
        self.latency = latency
        # None: any key / any model id is accepted (the models endpoint only).
        self.api_keys = api_keys
        self.models = models
        self.requests: list[Recorded] = []
        self.failures: list[str] = []
        self._queue: list[Turn] = []
        self._pinned: dict[int, Turn] = {}
        self._fallback: Callable[[Recorded], dict[str, Any] | Error] | None = None
        self._cache = _PromptCache(min_cacheable_tokens)
        self._lock = threading.Lock()
        self._served = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # scripting

    def script(self, *turns: Turn) -> FakeAnthropic:
        with self._lock:
            self._queue.extend(turns)
        return self

    def on(self, n: int, turn: Turn) -> FakeAnthropic:
        with self._lock:
            self._pinned[n] = turn
        return self

    def otherwise(self, fn: Callable[[Recorded], dict[str, Any] | Error]) -> FakeAnthropic:
        self._fallback = fn
        return self

    def reset_cache(self) -> None:
        self._cache.clear()

    # what was seen

    @property
    def messages_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body or {} for r in self.messages_requests]

    def assert_clean(self) -> None:
        problems = list(self.failures)
        with self._lock:
            if self._queue:
                problems.append(f"{len(self._queue)} scripted turn(s) were never requested")
            unused = sorted(n for n in self._pinned if n > len(self.messages_requests))
        if unused:
            problems.append(f"turns pinned to requests {unused} were never requested")
        assert not problems, "fake Anthropic API: " + "; ".join(problems)

    @staticmethod
    def static_prefix_tokens(body: Mapping[str, Any]) -> int:
        """Estimated tokens of tools + system: the part every question shares."""
        prefix = prefix_of(body)
        return prefix.tokens[prefix.static_end] if prefix.static_end >= 0 else 0

    # lifecycle

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAnthropic:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # serving

    def _model(
        self,
        handler: BaseHTTPRequestHandler,
        record: Recorded,
        headers: Mapping[str, str],
        model: str,
    ) -> None:
        """``GET /v1/models/{id}`` (what `pipebot doctor` asks): the key, then the model."""
        key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_keys is not None and key not in self.api_keys:
            self._fail(handler, record, 401, "authentication_error", "invalid x-api-key")
            return
        if self.models is not None and model not in self.models:
            self._fail(handler, record, 404, "not_found_error", f"model: {model}")
            return
        body = {
            "type": "model",
            "id": model,
            "display_name": model,
            "created_at": "2026-01-01T00:00:00Z",
        }
        self._send(handler, record, 200, body)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = handler.path.split("?", 1)[0]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = Recorded(
            index=0, method=handler.command, path=path, headers=headers, raw=raw, body=body
        )
        with self._lock:
            self.requests.append(record)
        if handler.command == "GET" and path.startswith("/v1/models/"):
            self._model(handler, record, headers, path.removeprefix("/v1/models/"))
            return
        if handler.command != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            self._fail(
                handler, record, 404, "not_found_error", f"unexpected {handler.command} {path}"
            )
            return
        if not isinstance(body, dict):
            self._fail(handler, record, 400, "invalid_request_error", "body is not a JSON object")
            return
        problems = _problems(headers, body, counting=path.endswith("/count_tokens"))
        if problems:
            self._fail(handler, record, 400, "invalid_request_error", "; ".join(problems))
            return
        if path.endswith("/count_tokens"):
            total = prefix_of(body).tokens
            self._send(handler, record, 200, {"input_tokens": total[-1] if total else 0})
            return
        with self._lock:
            self._served += 1
            record.index = self._served
            turn = self._pinned.pop(record.index, None)
            if turn is None and self._queue:
                turn = self._queue.pop(0)
        if turn is None and self._fallback is not None:
            turn = self._fallback
        if turn is None:
            self._fail(
                handler,
                record,
                500,
                "api_error",
                f"fake: no scripted turn for request {record.index}",
                retry=False,
            )
            return
        answer = turn(record) if callable(turn) else turn
        if self.latency:
            threading.Event().wait(self.latency)
        if isinstance(answer, Error):
            self._send(handler, record, answer.status, answer.body(), answer.headers)
            return
        self._send(handler, record, 200, self._complete(body, answer, record.index))

    def _complete(
        self, request: Mapping[str, Any], answer: dict[str, Any], index: int
    ) -> dict[str, Any]:
        content = answer.get("content", [])
        uncached, read, written = self._cache.account(prefix_of(request))
        usage = {
            "input_tokens": uncached,
            "output_tokens": max(1, _tokens(content)),
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written,
        }
        usage.update(answer.get("usage") or {})
        return {
            "id": f"msg_fake{index:04d}",
            "type": "message",
            "role": "assistant",
            "model": request.get("model"),
            "stop_sequence": None,
            **answer,
            "usage": usage,
        }

    def _fail(
        self,
        handler: BaseHTTPRequestHandler,
        record: Recorded,
        status: int,
        kind: str,
        reason: str,
        *,
        retry: bool = False,
    ) -> None:
        self.failures.append(f"{record.method} {record.path}: {reason}")
        headers = {"x-should-retry": "true" if retry else "false"}
        self._send(handler, record, status, Error(status, kind, reason).body(), headers)

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        record: Recorded,
        status: int,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        record.status, record.response = status, body
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.send_header("request-id", f"req_fake{record.index:04d}")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def iter_text(body: Mapping[str, Any]) -> Iterator[str]:
    """Every string in a request body (for "was this ever sent?" assertions)."""
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
