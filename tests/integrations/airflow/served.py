"""A tiny in-process Airflow for unit tests: answers from recorded payloads.

It is a `requests` transport adapter handed to `AirflowClient(adapter=…)` — the client's own
test seam — so the real client code (session guard, auth, paging, streaming) runs unchanged;
nothing is patched. Every request it receives is kept in `received`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None
    content_type: str = "application/json"
    stream: Callable[[], Iterator[bytes]] | None = None  # a body made on the fly


class _GeneratedBody(io.RawIOBase):
    """A read-only file over a chunk generator: the body never exists whole."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


Route = Callable[[Received], Answer | None]


class ServedAdapter(BaseAdapter):
    """Answers from `routes` by (method, path); anything else from `fallback`, else 404."""

    def __init__(
        self, routes: Mapping[tuple[str, str], Answer | Route], fallback: Route | None = None
    ) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], Answer | Route] = dict(routes)
        self.fallback = fallback
        self.received: list[Received] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        body = request.body
        got = Received(
            method=(request.method or "GET").upper(),
            path=unquote(parts.path),
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=dict(request.headers),
            body=body.encode() if isinstance(body, str) else body,
        )
        self.received.append(got)
        route = self.routes.get((got.method, got.path), self.fallback)
        answer = route(got) if callable(route) else route
        if answer is None:
            answer = Answer(404, {"detail": "Not Found"})
        response = requests.Response()
        response.status_code = answer.status
        response.reason = "OK" if answer.status < 400 else "Error"
        response.headers = CaseInsensitiveDict({"Content-Type": answer.content_type})
        if answer.stream is not None:
            response.raw = io.BufferedReader(_GeneratedBody(answer.stream()), 1 << 16)
        else:
            payload = answer.body
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            response.raw = io.BytesIO(raw)
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        return None


def recorded(name: str) -> Answer:
    data = fixture(name)
    return Answer(data["status"], data["body"])


V2_VERSION: Answer = recorded("v2_version.json")
