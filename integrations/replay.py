"""Record a connector's HTTP answers to files, and serve them back offline.

Used by ``pipebot demo`` and the evals, never in production: a client takes an ``adapter``
(mounted for ``http://`` and ``https://``), so the same connector code runs against a live
server through `RecordingAdapter` or against files through `ReplayAdapter`::

    live = AirflowClient(url, username=…, adapter=RecordingAdapter(HTTPAdapter(), "demo/"))
    offline = AirflowClient("http://airflow.demo", adapter=ReplayAdapter("demo/"))

**Files.** One small JSON file per distinct request, named from the request so names are
stable across recordings (``GET_api_v2_dags_orders_daily-3f2a9c01d4.json``; long paths keep
both ends), holding
``method, path, query, key, status, headers, body`` (``body`` is the parsed JSON when the
answer was JSON, else text). ``index.json`` maps each key to its file and carries
``recorded_at`` (ISO 8601, UTC), the clock a demo should freeze. Only ``Content-Type`` is
kept from response headers; request headers — ``Authorization`` included — are never
written, the token exchange is not recorded at all, and 401 answers are skipped.

**Keys.** ``METHOD /unquoted/path?sorted&query``. Normalisation: the path is
percent-decoded (run ids hold ``:`` and ``+``); query pairs are sorted; time-window
parameters (names ending ``_gte``, ``_gt``, ``_lte``, ``_lt``) are dropped, because a replay
asks "since 24 h ago" at a different wall-clock time than the recording did.

**Replay.** ``POST …/auth/token`` is answered with a dummy token. A list request that was not
recorded with exactly these parameters (an agent may ask for any ``state`` or ``limit``) is
answered from the broadest recording of the same path, filtered here by ``state`` and paged by
``limit`` / ``offset`` — the items are still the recorded ones, only selected. Anything else
that was never recorded gets ``404 {"detail": "not in the recorded demo data: GET …"}``, which
connectors turn into their usual not-found error.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

INDEX = "index.json"
TOKEN_SUFFIX = "/auth/token"
DUMMY_TOKEN = "replay-token-not-a-secret"
_WINDOW_PARAM = re.compile(r".+_(gte|gt|lte|lt)$")
_KEPT_HEADERS = ("Content-Type",)
# Query parameters that page or sort a list rather than filter it.
_PAGING = frozenset({"limit", "offset", "order_by"})

__all__ = ["RecordingAdapter", "ReplayAdapter", "request_key"]


def request_key(method: str, url: str) -> str:
    """``GET /api/v2/dags/~/dagRuns?limit=15&state=failed`` — what a recording is found by."""
    parts = urlsplit(url)
    query = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _WINDOW_PARAM.match(name)
    )
    text = "&".join(f"{name}={value}" for name, value in query)
    return f"{method.upper()} {unquote(parts.path)}" + (f"?{text}" if text else "")


def _file_name(key: str) -> str:
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9]+", "_", key.split("?", 1)[0]).strip("_")
    if len(slug) > 90:  # keep both ends: the DAG near the start, the task and call at the end
        slug = f"{slug[:30]}__{slug[-58:]}"
    return f"{slug}-{digest}.json"


def _response(
    request: requests.PreparedRequest,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    try:
        response.reason = HTTPStatus(status).phrase
    except ValueError:
        response.reason = ""
    response.headers = CaseInsensitiveDict(headers)
    # A file-like raw body lets callers stream it (iter_content) exactly like a socket.
    response.raw = io.BytesIO(body)
    response.url = request.url or ""
    response.request = request
    response.encoding = "utf-8"
    return response


class RecordingAdapter(BaseAdapter):
    """Passes requests to `inner` and writes each answer to `directory` as it arrives."""

    def __init__(
        self, inner: BaseAdapter, directory: str | Path, *, recorded_at: datetime | None = None
    ) -> None:
        super().__init__()
        self.inner = inner
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.recorded_at = (recorded_at or datetime.now(UTC)).astimezone(UTC)
        self._files: dict[str, str] = {}
        self._lock = threading.Lock()
        self._write_index()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = self.inner.send(request, **kwargs)
        method = (request.method or "GET").upper()
        url = request.url or ""
        if urlsplit(url).path.endswith(TOKEN_SUFFIX) or response.status_code == 401:
            return response  # tokens and rejected credentials stay out of the recording
        body = response.content  # read once; requests serves later reads from this copy
        key = request_key(method, url)
        parts = urlsplit(url)
        content_type = response.headers.get("Content-Type", "")
        stored: Any
        try:
            stored = json.loads(body) if "json" in content_type else body.decode("utf-8")
        except ValueError:
            stored = body.decode("utf-8", errors="replace")
        record = {
            "method": method,
            "path": unquote(parts.path),
            "query": parse_qsl(parts.query, keep_blank_values=True),
            "key": key,
            "status": response.status_code,
            "headers": {h: response.headers[h] for h in _KEPT_HEADERS if h in response.headers},
            "body": stored,
        }
        name = _file_name(key)
        with self._lock:
            (self.directory / name).write_text(
                json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            self._files[key] = name
            self._write_index()
        return response

    def _write_index(self) -> None:
        index = {
            "recorded_at": self.recorded_at.isoformat(),
            "responses": dict(sorted(self._files.items())),
        }
        (self.directory / INDEX).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")

    def close(self) -> None:
        self.inner.close()


class ReplayAdapter(BaseAdapter):
    """Serves the answers a `RecordingAdapter` wrote; never touches the network."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        index = json.loads((self.directory / INDEX).read_text(encoding="utf-8"))
        self.recorded_at = datetime.fromisoformat(index["recorded_at"])
        self._files: dict[str, str] = dict(index.get("responses", {}))

    def keys(self) -> list[str]:
        return sorted(self._files)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        method = (request.method or "GET").upper()
        url = request.url or ""
        if method == "POST" and urlsplit(url).path.endswith(TOKEN_SUFFIX):
            body = json.dumps({"access_token": DUMMY_TOKEN}).encode()
            return _response(request, 201, body, {"Content-Type": "application/json"})
        key = request_key(method, url)
        name = self._files.get(key)
        if name is None:
            derived = self._from_broadest(key)
            if derived is not None:
                return _response(
                    request, 200, json.dumps(derived).encode(), {"Content-Type": "application/json"}
                )
            body = json.dumps({"detail": f"not in the recorded demo data: {key}"}).encode()
            return _response(request, 404, body, {"Content-Type": "application/json"})
        record = json.loads((self.directory / name).read_text(encoding="utf-8"))
        stored = record["body"]
        raw = stored.encode() if isinstance(stored, str) else json.dumps(stored).encode()
        return _response(request, int(record["status"]), raw, record.get("headers", {}))

    def _from_broadest(self, key: str) -> dict[str, Any] | None:
        """A list answer selected from the recording of the same path with the fewest filters."""
        path, _, query = key.partition("?")
        wanted = parse_qsl(query, keep_blank_values=True)
        candidates = []
        for recorded in self._files:
            other_path, _, other_query = recorded.partition("?")
            if other_path != path:
                continue
            filters = [k for k, _ in parse_qsl(other_query) if k not in _PAGING]
            candidates.append((len(filters), -_limit(other_query), recorded))
        if not candidates:
            return None
        _, _, broadest = min(candidates)
        record = json.loads((self.directory / self._files[broadest]).read_text(encoding="utf-8"))
        body = record.get("body")
        if int(record.get("status", 0)) != HTTPStatus.OK or not isinstance(body, dict):
            return None
        collection = next((k for k, v in body.items() if isinstance(v, list)), None)
        if collection is None:
            return None
        items = list(body[collection])
        states = {v for k, v in wanted if k == "state"}
        if states:
            items = [i for i in items if isinstance(i, dict) and i.get("state") in states]
        offset = next((int(v) for k, v in wanted if k == "offset" and v.isdigit()), 0)
        limit = next((int(v) for k, v in wanted if k == "limit" and v.isdigit()), len(items))
        return {**body, collection: items[offset : offset + limit], "total_entries": len(items)}

    def close(self) -> None:
        return None


def _limit(query: str) -> int:
    return next((int(v) for k, v in parse_qsl(query) if k == "limit" and v.isdigit()), 0)
