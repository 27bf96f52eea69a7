"""A local fake of the GitHub REST API's issue comments, for the pull-request comment tests.

GitHub is SaaS, so this stands in for it on ``127.0.0.1:<free port>``, speaking the wire format
of docs.github.com/rest/issues/comments (API version 2022-11-28):

- ``GET /repos/{owner}/{repo}/issues/{number}/comments?per_page=&page=`` — comments in
  ascending id order, ``per_page`` 30 by default and capped at 100, and a ``Link`` header with
  ``rel="next"``/``"last"``/``"first"``/``"prev"`` pointing, as GitHub does, at the
  ``/repositories/{id}/issues/{number}/comments`` form of the same list;
- ``POST /repos/{owner}/{repo}/issues/{number}/comments`` ``{"body": …}`` → 201 and the comment;
- ``PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`` ``{"body": …}`` → 200;
- errors in GitHub's shape (``{"message", "documentation_url", "status"}``): 401 "Bad
  credentials" / "Requires authentication", 403 "Resource not accessible by integration" with
  ``X-Accepted-GitHub-Permissions`` for a token that may only read, 404 "Not Found", 422
  "Validation Failed" for a body over 65,536 characters, 403 with ``x-ratelimit-remaining: 0``
  when the rate limit is used up.

Served under `prefix` (``/api/v3`` for GitHub Enterprise Server) when given::

    with FakeGitHub(prefix="/api/v3") as github:
        github.open_pull_request("acme/shop", 7)
        ...  # point GITHUB_API_URL at github.api_url and GITHUB_TOKEN at github.token
        [comment] = github.comments("acme/shop", 7)
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "ghs_fakeInstallationToken0123456789abcdef"
READ_ONLY_TOKEN = "ghs_fakeReadOnlyToken0123456789abcdef"
BOT_LOGIN = "github-actions[bot]"
MAX_BODY = 65_536
DOCS = "https://docs.github.com/rest/issues/comments"


@dataclass
class Comment:
    id: int
    repo: str
    number: int
    body: str
    login: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class _Repo:
    id: int
    pulls: set[int] = field(default_factory=set)


class FakeGitHub:
    """The fake server; use as a context manager (or `start()` / `stop()`)."""

    def __init__(self, *, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")
        self.token = TOKEN
        self.read_only_token = READ_ONLY_TOKEN
        self.requests: list[Recorded] = []
        self.rate_limited = False
        self._repos: dict[str, _Repo] = {}
        self._comments: dict[int, Comment] = {}
        self._ids = itertools.count(1_000_001)
        self._lock = threading.Lock()
        # Set: requests are answered; cleared by `hold()`, they wait (a slow or hung GitHub).
        self._open = threading.Event()
        self._open.set()
        self._held: frozenset[str] = frozenset()
        self._hold_after = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake GitHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """What GITHUB_API_URL is set to (``…/api/v3`` on GitHub Enterprise Server)."""
        return self.base_url + self.prefix

    def start(self) -> FakeGitHub:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._open.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ------------------------------------------------------------------------

    def open_pull_request(self, repo: str, number: int) -> None:
        with self._lock:
            self._repo(repo, create=True).pulls.add(number)

    def add_comment(self, repo: str, number: int, body: str, *, login: str = "dana") -> Comment:
        """A comment someone else wrote (or an earlier run, with ``login=BOT_LOGIN``)."""
        with self._lock:
            return self._add(repo, number, body, login)

    def comments(self, repo: str, number: int) -> list[Comment]:
        with self._lock:
            return sorted(
                (c for c in self._comments.values() if (c.repo, c.number) == (repo, number)),
                key=lambda c: c.id,
            )

    def writes(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def hold(self, *methods: str, after: bool = False) -> None:
        """Make requests (of `methods`, default all) wait until `release()`: a GitHub that does
        not answer. With ``after=True`` it does what was asked first and holds the answer — a
        request that arrived although the client saw it time out."""
        self._held = frozenset(m.upper() for m in methods) or frozenset(
            {"GET", "POST", "PATCH", "PUT", "DELETE"}
        )
        self._hold_after = after
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    # -- data ---------------------------------------------------------------------------------

    def _repo(self, name: str, *, create: bool = False) -> _Repo:
        if name not in self._repos and create:
            self._repos[name] = _Repo(id=500_000 + len(self._repos))
        return self._repos[name]

    def _add(self, repo: str, number: int, body: str, login: str) -> Comment:
        now = datetime.now(UTC).replace(microsecond=0)
        comment = Comment(next(self._ids), repo, number, body, login, now, now)
        self._comments[comment.id] = comment
        return comment

    def payload(self, comment: Comment) -> dict[str, Any]:
        """A comment as the API returns it (the fields of the documented example)."""
        base = self.api_url
        web = self.base_url
        return {
            "id": comment.id,
            "node_id": f"IC_kwDO{comment.id}",
            "url": f"{base}/repos/{comment.repo}/issues/comments/{comment.id}",
            "html_url": f"{web}/{comment.repo}/pull/{comment.number}#issuecomment-{comment.id}",
            "body": comment.body,
            "user": {
                "login": comment.login,
                "id": 41898282 if comment.login == BOT_LOGIN else 583231,
                "type": "Bot" if comment.login.endswith("[bot]") else "User",
                "site_admin": False,
            },
            "created_at": _iso(comment.created_at),
            "updated_at": _iso(comment.updated_at),
            "issue_url": f"{base}/repos/{comment.repo}/issues/{comment.number}",
            "author_association": "NONE" if comment.login.endswith("[bot]") else "MEMBER",
            "performed_via_github_app": None,
            "reactions": {"url": f"{base}/repos/{comment.repo}/issues/comments/{comment.id}"},
        }


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


_LIST = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$")
_LIST_BY_ID = re.compile(r"^/repositories/(?P<id>\d+)/issues/(?P<number>\d+)/comments$")
_EDIT = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        recorded = Recorded(
            method=method,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        with fake._lock:
            fake.requests.append(recorded)
        held = method in fake._held
        if held and not fake._hold_after:
            fake._open.wait(timeout=30)
        self._answer: tuple[int, bytes, dict[str, str]] | None = None
        self._route(method, split.path, recorded.query, body)
        if held and fake._hold_after:
            fake._open.wait(timeout=30)
        assert self._answer is not None
        status, data, headers = self._answer
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up waiting

    def _route(self, method: str, full_path: str, query: dict[str, list[str]], body: bytes) -> None:
        fake = self.fake
        if not full_path.startswith(fake.prefix + "/"):
            return self._error(404, "Not Found", "https://docs.github.com/rest")
        path = full_path[len(fake.prefix) :]
        token = self._token()
        if token is None:
            return self._error(401, "Requires authentication", "https://docs.github.com/rest")
        if token not in (fake.token, fake.read_only_token):
            return self._error(401, "Bad credentials", "https://docs.github.com/rest")
        if fake.rate_limited:
            return self._error(
                403,
                "API rate limit exceeded for installation ID 4242.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1764003600"},
            )
        with fake._lock:
            if method == "GET" and (found := _LIST.match(path)):
                return self._list(found["repo"], int(found["number"]), query)
            if method == "GET" and (found := _LIST_BY_ID.match(path)):
                names = [n for n, r in fake._repos.items() if r.id == int(found["id"])]
                if not names:
                    return self._error(404, "Not Found", f"{DOCS}#list-issue-comments")
                return self._list(names[0], int(found["number"]), query)
            if method == "POST" and (found := _LIST.match(path)):
                return self._create(found["repo"], int(found["number"]), body, token)
            if method == "PATCH" and (found := _EDIT.match(path)):
                return self._update(found["repo"], int(found["id"]), body, token)
        return self._error(404, "Not Found", "https://docs.github.com/rest")

    # -- routes (called with the fake's lock held) --------------------------------------------

    def _list(self, repo: str, number: int, query: dict[str, list[str]]) -> None:
        fake = self.fake
        if repo not in fake._repos or number not in fake._repos[repo].pulls:
            return self._error(404, "Not Found", f"{DOCS}#list-issue-comments")
        per_page = min(100, max(1, _int(query, "per_page", 30)))
        page = max(1, _int(query, "page", 1))
        everything = sorted(
            (c for c in fake._comments.values() if (c.repo, c.number) == (repo, number)),
            key=lambda c: c.id,
        )
        last = max(1, -(-len(everything) // per_page))
        shown = everything[(page - 1) * per_page : page * per_page]
        links = []
        listing = f"{fake.api_url}/repositories/{fake._repos[repo].id}/issues/{number}/comments"

        def link(to: int, rel: str) -> str:
            return f'<{listing}?per_page={per_page}&page={to}>; rel="{rel}"'

        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        headers = {"Link": ", ".join(links)} if links else {}
        self._json(200, [fake.payload(c) for c in shown], headers)

    def _create(self, repo: str, number: int, raw: bytes, token: str) -> None:
        fake = self.fake
        if repo not in fake._repos or number not in fake._repos[repo].pulls:
            return self._error(404, "Not Found", f"{DOCS}#create-an-issue-comment")
        if token == fake.read_only_token:
            return self._forbidden("create-an-issue-comment")
        text = self._body_text(raw, "create-an-issue-comment")
        if text is None:
            return None
        comment = fake._add(repo, number, text, BOT_LOGIN)
        self._json(201, fake.payload(comment), {"Location": fake.payload(comment)["url"]})
        return None

    def _update(self, repo: str, comment_id: int, raw: bytes, token: str) -> None:
        fake = self.fake
        comment = fake._comments.get(comment_id)
        if comment is None or comment.repo != repo:
            return self._error(404, "Not Found", f"{DOCS}#update-an-issue-comment")
        if token == fake.read_only_token or comment.login != BOT_LOGIN:
            # Only the author (or a maintainer) may edit a comment.
            return self._forbidden("update-an-issue-comment")
        text = self._body_text(raw, "update-an-issue-comment")
        if text is None:
            return None
        comment.body = text
        comment.updated_at = datetime.now(UTC).replace(microsecond=0)
        self._json(200, fake.payload(comment))
        return None

    def _body_text(self, raw: bytes, operation: str) -> str | None:
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            self._error(400, "Problems parsing JSON", f"{DOCS}#{operation}")
            return None
        text = data.get("body") if isinstance(data, dict) else None
        if not isinstance(text, str):
            self._invalid("missing_field", "body", "body wasn't supplied.", operation)
            return None
        if len(text) > MAX_BODY:
            self._invalid(
                "custom", "body", f"Body is too long (maximum is {MAX_BODY} characters)", operation
            )
            return None
        return text

    # -- answers ------------------------------------------------------------------------------

    def _token(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not value.strip():
            return None
        return value.strip()

    def _forbidden(self, operation: str) -> None:
        self._error(
            403,
            "Resource not accessible by integration",
            f"{DOCS}#{operation}",
            headers={"X-Accepted-GitHub-Permissions": "issues=write; pull_requests=write"},
        )

    def _invalid(self, code: str, field_name: str, message: str, operation: str) -> None:
        self._json(
            422,
            {
                "message": "Validation Failed",
                "errors": [
                    {
                        "resource": "IssueComment",
                        "code": code,
                        "field": field_name,
                        "message": message,
                    }
                ],
                "documentation_url": f"{DOCS}#{operation}",
                "status": "422",
            },
        )

    def _error(
        self, status: int, message: str, docs: str, *, headers: dict[str, str] | None = None
    ) -> None:
        self._json(
            status,
            {"message": message, "documentation_url": docs, "status": str(status)},
            headers,
        )

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        # Kept, and written by `_handle` once the fake's lock is released.
        self._answer = (status, json.dumps(payload).encode(), dict(headers or {}))


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query.get(name, [str(default)])[0])
    except ValueError:
        return default
