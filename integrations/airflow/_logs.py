"""Reading task logs without holding them: a streaming JSON reader and a bounded tail.

Airflow answers ``GET …/logs/{try}`` (``Accept: application/json``) with one JSON document,
``{"content": …, "continuation_token": …}``, whose ``content`` is the *whole* log of a
finished try: a list of structured events (Airflow 3), a list of strings, or one string
(Airflow 2: the Python repr of ``(host, text)`` tuples). Errors sit at the end, so we need the
tail — but a 50 MB log must not become a 50 MB ``bytes`` plus a 200 MB ``dict`` in a bot
worker. So the body is read as a stream:

* `JsonLogStream` walks the document chunk by chunk and yields one array element (or one
  piece of a long string) at a time; nothing but the current element and one network chunk
  is held.
* `LogTail` renders each element as a line and keeps only the last ``max_chars`` of lines
  (counting what it dropped), plus the errors found on the way: structured
  ``error_detail`` entries and Python tracebacks in plain text.

A long string ``content`` (Airflow 2) is kept as a bounded text tail before it is split into
lines, because its repr form can only be unescaped once the end of the string is known.
"""

from __future__ import annotations

import ast
import codecs
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from bot.facts import LogError

MAX_ERRORS = 5
MAX_FRAMES = 5
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# One lexical piece of a JSON string body: plain run, surrogate pair, escape.
_STRING_PIECE = re.compile(
    r'[^"\\]+'
    r"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|\\u[0-9a-fA-F]{4}"
    r'|\\["\\/bfnrt]'
)
_HIGH_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_PY_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_PY_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
# Keys of a structured event that are not worth a key=value suffix on its line.
_QUIET_KEYS = frozenset(
    {"event", "timestamp", "level", "logger", "error_detail", "sources", "chan", "filename",
     "lineno", "func_name", "exc_info", "exception", "log_level", "pid", "ti", "ti_id",
     "dag_id", "run_id", "task_id", "try_number", "map_index", "bundle_name",
     "bundle_version"}
)  # fmt: skip
MAX_EXTRAS = 4
SOURCE_GROUP = "::group::Log message source details"
_STRING_TAIL_SLACK = 65_536


class LogFormatError(ValueError):
    """The log body is not the JSON document the log endpoint promises."""


class JsonLogStream:
    """Incremental reader of ``{"content": [...] | "...", "continuation_token": ...}``.

    `items()` yields ``("item", element)`` per element of a ``content`` list,
    ``("text", piece)`` per piece of a ``content`` string and ``(key, value)`` for every
    other top-level key.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""
        self._pos = 0
        self._eof = False

    def items(self) -> Iterator[tuple[str, Any]]:
        self._expect("{")
        if self._peek() == "}":
            return
        while True:
            key = self._value()
            if not isinstance(key, str):
                raise LogFormatError("log document has a non-string key")
            self._expect(":")
            following = self._peek()
            if key == "content" and following == "[":
                self._pos += 1
                yield from self._array_items()
            elif key == "content" and following == '"':
                self._pos += 1
                yield from self._string_pieces()
            else:
                yield key, self._value()
            separator = self._peek()
            self._pos += 1
            if separator == "}":
                return
            if separator != ",":
                raise LogFormatError(f"unexpected {separator!r} in log document")

    # -- internals ----------------------------------------------------------------------

    def _more(self) -> bool:
        # Forget what was consumed, so the buffer never grows beyond one element + one chunk.
        self._buf = self._buf[self._pos :]
        self._pos = 0
        for chunk in self._chunks:
            if chunk:
                self._buf += self._utf8.decode(chunk)
                return True
        self._buf += self._utf8.decode(b"", final=True)
        self._eof = True
        return False

    def _peek(self) -> str:
        while True:
            match = _WS.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def _expect(self, char: str) -> None:
        found = self._peek()
        if found != char:
            raise LogFormatError(f"expected {char!r} in log document, found {found[:1]!r}")
        self._pos += 1

    def _value(self) -> Any:
        while True:
            self._peek()
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError:
                if self._eof:
                    raise LogFormatError("log document is not valid JSON") from None
                self._more()
                continue
            # A number cut by the chunk boundary ("1" of "1.5e10") decodes early: make sure
            # more text follows it before trusting it.
            near_end = end + 32 >= len(self._buf)
            if isinstance(value, int | float) and near_end and not self._eof:
                self._more()  # moves the buffer: decode again either way
                continue
            self._pos = end
            return value

    def _array_items(self) -> Iterator[tuple[str, Any]]:
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield "item", self._value()
            separator = self._peek()
            self._pos += 1
            if separator == "]":
                return
            if separator != ",":
                raise LogFormatError(f"unexpected {separator!r} in log content")

    def _string_pieces(self) -> Iterator[tuple[str, Any]]:
        while True:
            raw: list[str] = []
            closed = False
            while True:
                if self._pos < len(self._buf) and self._buf[self._pos] == '"':
                    self._pos += 1
                    closed = True
                    break
                match = _STRING_PIECE.match(self._buf, self._pos)
                if match is None:
                    break
                if (
                    _HIGH_SURROGATE.fullmatch(match.group())
                    and len(self._buf) - match.end() < 6
                    and not self._eof
                ):
                    break  # its low half may be in the next chunk
                raw.append(match.group())
                self._pos = match.end()
            if raw:
                yield "text", json.loads('"' + "".join(raw) + '"')
            if closed:
                return
            if len(self._buf) - self._pos > 12 or not self._more():
                raise LogFormatError("log content string is not valid JSON")


def parse_time(value: Any) -> datetime | None:
    """Lenient ISO 8601: ``Z``, offsets, and more than 6 fractional digits (nanoseconds)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        # The common case first: a digest maps 160,000 of these (bench_digest_scale.py).
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class LogTail:
    """The last `max_chars` characters of rendered log lines, and the errors seen."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max(1, max_chars)
        # Kept items are rendered lazily: a 50 MB log has ~250,000 events and all but the last
        # few dozen are dropped, so formatting each one as it arrives would be most of the
        # cost. Each entry is (estimated rendered size, event dict or finished line).
        self._lines: deque[tuple[int, dict[str, Any] | str]] = deque()
        self._size = 0
        self._omitted = 0
        self._cut = 0
        self.errors: deque[LogError] = deque(maxlen=MAX_ERRORS)
        self.sources: list[str] = []
        self._frames: list[str] | None = None  # inside a traceback
        self._in_source_group = False
        self.events = 0

    # -- feeding ------------------------------------------------------------------------

    def add_item(self, item: Any) -> None:
        self.events += 1
        if isinstance(item, dict):
            self.add_event(item)
        elif isinstance(item, str):
            self.add_text(item)
        else:
            self.add_line(json.dumps(item, default=str))

    def add_text(self, text: str) -> None:
        for line in text.splitlines():
            self.add_line(line)

    def add_event(self, event: dict[str, Any]) -> None:
        message = str(event.get("event", ""))
        sources = event.get("sources")
        if isinstance(sources, list):
            self.sources.extend(str(s) for s in sources)
        # Airflow 3 opens every log with a group naming the file(s) it read: keep it as the
        # source, not as content. Other ::group:: markers only fold the UI.
        if message == SOURCE_GROUP:
            self._in_source_group = True
            return
        if message.startswith("::endgroup::"):
            self._in_source_group = False
            return
        if self._in_source_group and "timestamp" not in event:
            self.sources.append(message)
            return
        if message.startswith("::group::"):
            return
        # Tracebacks printed to stderr arrive one event per line: scan the bare message,
        # not the line with our time/level prefix (and only when one may be in progress).
        if self._frames is not None or "Traceback" in message:
            for part in message.splitlines():
                self._scan_traceback(part)
        self._keep(len(message) + _EVENT_OVERHEAD, event)
        for detail in _error_details(event.get("error_detail")):
            self._record(detail)

    def add_line(self, line: str) -> None:
        self._scan_traceback(line)
        self._keep(len(line) + 1, line)

    def _keep(self, size: int, item: dict[str, Any] | str) -> None:
        self._lines.append((size, item))
        self._size += size
        while self._size > self.max_chars and len(self._lines) > 1:
            dropped, _ = self._lines.popleft()
            self._size -= dropped
            self._omitted += dropped

    @property
    def lines(self) -> tuple[str, ...]:
        """The kept tail rendered, cut to exactly `max_chars` (the newest lines win).

        `omitted_chars` counts dropped events by their estimated rendered size, and what the
        exact rendering of the kept ones had to cut on top of that.
        """
        rendered: list[str] = []
        for _, item in self._lines:
            rendered.extend(_render(item) if isinstance(item, dict) else [item])
        kept: deque[str] = deque()
        size = 0
        cut = 0
        for index in range(len(rendered) - 1, -1, -1):
            line = rendered[index]
            room = self.max_chars - size - 1  # the line's newline counts too
            if room < 0 or (kept and len(line) > room):
                cut = sum(len(earlier) + 1 for earlier in rendered[: index + 1])
                break
            if len(line) > room:
                cut += len(line) - max(room, 0)
                line = line[-room:] if room > 0 else ""
            kept.appendleft(line)
            size += len(line) + 1
        self._cut = cut
        return tuple(kept)

    @property
    def omitted_chars(self) -> int:
        return self._omitted + self._cut

    @omitted_chars.setter
    def omitted_chars(self, value: int) -> None:
        self._omitted = value - self._cut

    # -- errors -------------------------------------------------------------------------

    def _record(self, error: LogError) -> None:
        if any(e.exc_type == error.exc_type and e.message == error.message for e in self.errors):
            return
        self.errors.append(error)

    def _scan_traceback(self, line: str) -> None:
        if "Traceback (most recent call last)" in line:
            self._frames = []
            return
        if self._frames is None:
            return
        frame = _FRAME.match(line)
        if frame:
            self._frames.append(
                f"{_short_path(frame['file'])}:{frame['line']} in {frame['name'].strip()}"
            )
            return
        if not line.strip() or line[:1].isspace() or line.lstrip().startswith(("^", "~")):
            return  # source lines and caret markers under each frame
        exception = _EXCEPTION_LINE.match(line.strip())
        if exception:
            self._record(
                LogError(
                    exc_type=exception["type"],
                    message=(exception["message"] or "").strip(),
                    frames=tuple(self._frames[-MAX_FRAMES:]),
                )
            )
        self._frames = None


# A rendered event is "HH:MM:SS LEVEL message key=value…": the message plus about this much.
_EVENT_OVERHEAD = 24


def _render(event: dict[str, Any]) -> list[str]:
    message = str(event.get("event", ""))
    when = parse_time(event.get("timestamp"))
    level = str(event.get("level") or "").upper()
    prefix = " ".join(p for p in (when.strftime("%H:%M:%S") if when else "", level) if p)
    extras = " ".join(
        [
            f"{key}={_short(value)}"
            for key, value in event.items()
            if key not in _QUIET_KEYS and value not in (None, "", [], {})
        ][:MAX_EXTRAS]
    )
    text = " ".join(p for p in (prefix, message, extras) if p)
    lines = text.splitlines() or [prefix]
    for detail in _error_details(event.get("error_detail")):
        lines.append(f"  {detail.exc_type}: {detail.message}".rstrip(": "))
        lines.extend(f"    at {frame}" for frame in detail.frames)
    return lines


def _short_path(path: str) -> str:
    # Installed libraries are named from their package down; the venv prefix says nothing.
    _, marker, rest = path.rpartition("site-packages/")
    return rest if marker else path


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_details(raw: Any) -> list[LogError]:
    """Airflow 3's structured ``error_detail``: a list of exceptions (causes flagged)."""
    if not isinstance(raw, list):
        return []
    found = []
    for entry in raw:
        if not isinstance(entry, dict) or not entry.get("exc_type"):
            continue
        frames = []
        for frame in entry.get("frames") or ():
            if isinstance(frame, dict):
                frames.append(
                    f"{_short_path(str(frame.get('filename', '?')))}:{frame.get('lineno', '?')} "
                    f"in {frame.get('name', '?')}"
                )
        found.append(
            LogError(
                exc_type=str(entry["exc_type"]),
                message=str(entry.get("exc_value") or ""),
                frames=tuple(frames[-MAX_FRAMES:]),
            )
        )
    return found


class TextTail:
    """The first few and the last `keep` characters of a long text that arrives in pieces."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.head = ""
        self._pieces: deque[str] = deque()
        self._size = 0
        self.dropped = 0

    def add(self, piece: str) -> None:
        if len(self.head) < 256:
            self.head += piece[: 256 - len(self.head)]
        self._pieces.append(piece)
        self._size += len(piece)
        while self._size - len(self._pieces[0]) >= self.keep:
            self._size -= len(self._pieces[0])
            self.dropped += len(self._pieces.popleft())

    @property
    def text(self) -> str:
        return "".join(self._pieces)


def feed_text_content(tail: LogTail, text: TextTail) -> None:
    """Turn a (possibly truncated) string ``content`` into lines of `tail`.

    Airflow 2 sends ``"[('host', 'line\\nline…')]"``: a Python repr. Whole, it is evaluated
    safely with `ast.literal_eval`; truncated (a huge log), its tail is unescaped by hand.
    """
    body = text.text
    tail.omitted_chars += text.dropped
    if not text.head.lstrip().startswith("[("):
        tail.add_text(body)
        return
    host = re.match(r"\s*\[\(\s*'([^']*)'", text.head)
    if host:
        tail.sources.append(f"host {host.group(1)}")
    if not text.dropped:
        try:
            parts = ast.literal_eval(body)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parts = None
        if isinstance(parts, list):
            for part in parts:
                piece = part[1] if isinstance(part, tuple) and len(part) > 1 else part
                tail.add_text(str(piece))
            return
    # Truncated: drop the partial first line and the closing "')]", then undo repr escapes.
    if text.dropped and "\\n" in body:
        cut = body.index("\\n") + 2
        tail.omitted_chars += cut
        body = body[cut:]
    body = re.sub(r"""['"]\)\]\s*$""", "", body)
    tail.add_text(_PY_ESCAPE.sub(_unescape, body))


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] in "xuU" and len(code) > 1:
        return chr(int(code[1:], 16))
    return _PY_SIMPLE_ESCAPES.get(code, "\\" + code)


def string_tail_budget(max_chars: int) -> int:
    # Repr escapes ("\\n") and the lines we later drop need room beyond max_chars.
    return 2 * max_chars + _STRING_TAIL_SLACK
