"""GitHub's REST API, for one thing only: the comments of a pull request.

    client = GitHubClient(api_url="https://api.github.com", token="ghs_…")
    for comment in client.comments("acme/shop", 123):          # every page, oldest first
        ...
    client.create_comment("acme/shop", 123, "<!-- pipebot:schema-review -->…")
    client.update_comment("acme/shop", 987654, "…")

This is pipebot's only client that writes to a service: the pull-request comment a CI step
publishes (``pipebot github comment``). It is not a connector — no toolset, the agent never
sees it — and it can write nothing else: its session refuses every request but GETs, a POST to
``/repos/{owner}/{repo}/issues/{number}/comments`` and a PATCH of
``/repos/{owner}/{repo}/issues/comments/{id}``, before anything leaves the process.

Every call has a connect and read timeout; 429 and 5xx answers to GETs and PATCHes (which are
idempotent) are retried with backoff, honouring ``Retry-After`` up to a cap; a POST is never
resent in place (the caller looks for it first, `bot`'s outbox rule). Errors name the call,
GitHub's message and what to do — which permission a 403 lacks — and never the token.
``Link`` headers are followed only on the API's own host, so the token goes nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot.errors import SourceError
from integrations.errors import (
    ReadOnlyRefused,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)

SYSTEM = "GitHub"
DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
USER_AGENT = "pipebot (pull-request comments)"
PER_PAGE = 100  # GitHub's maximum
MAX_PAGES = 50  # 5,000 comments: a pull request with more is not searched whole
MAX_RETRY_AFTER_S = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
# What GitHub needs to write a pull request's conversation comments.
WRITE_PERMISSION = (
    "`permissions: pull-requests: write` for the workflow's GITHUB_TOKEN (a fine-grained token "
    "needs Pull requests or Issues: Read and write; a classic one `repo`, or `public_repo`)"
)
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, kw_only=True)
class IssueComment:
    id: int
    body: str
    author: str  # the login, e.g. "github-actions[bot]"
    url: str  # the comment on github.com (html_url)


class _Retry(Retry):
    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER_S)


class _CommentSession(requests.Session):
    """A session that can list comments, add one to an issue and edit one — nothing else."""

    def __init__(self, *, base_path: str, timeout: float, retries: int, backoff: float) -> None:
        super().__init__()
        self.timeout = timeout
        prefix = re.escape(base_path.rstrip("/"))
        self._writes = {
            "POST": re.compile(rf"^{prefix}/repos/[^/]+/[^/]+/issues/\d+/comments$"),
            "PATCH": re.compile(rf"^{prefix}/repos/[^/]+/[^/]+/issues/comments/\d+$"),
        }
        retry = _Retry(
            total=retries,
            connect=retries,
            read=0,  # a read timeout is not retried: GitHub may have done it
            status=retries,
            backoff_factor=backoff,
            backoff_max=MAX_RETRY_AFTER_S,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "PATCH"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        method = (request.method or "GET").upper()
        path = urlsplit(request.url or "").path
        if method != "GET":
            allowed = self._writes.get(method)
            if allowed is None or not allowed.match(path):
                raise ReadOnlyRefused(
                    SYSTEM,
                    f"refused {method} {path}: pipebot only adds or edits a pull request's "
                    "comment (nothing was sent)",
                )
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class GitHubClient:
    def __init__(
        self,
        *,
        api_url: str = DEFAULT_API_URL,
        token: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if not token:
            raise ValueError("a GitHub token is needed")
        self.api_url = api_url.rstrip("/")
        split = urlsplit(self.api_url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ValueError(f"not an http(s) URL: {api_url!r}")
        self._host = split.netloc
        self._session = _CommentSession(
            base_path=split.path, timeout=timeout, retries=retries, backoff=backoff
        )
        self._session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
                "Authorization": f"Bearer {token}",
            }
        )
        self.timeout = timeout

    def close(self) -> None:
        self._session.close()

    # -- calls ------------------------------------------------------------------------------

    def comments(self, repo: str, number: int) -> Iterator[IssueComment]:
        """Every comment of issue or pull request `number`, oldest first (all pages, following
        ``Link: rel="next"``). Raises `UpstreamError` past `MAX_PAGES` pages rather than
        pretend the rest is empty."""
        _check_repo(repo)
        url: str | None = f"{self.api_url}/repos/{repo}/issues/{number}/comments"
        params: Mapping[str, Any] | None = {"per_page": PER_PAGE, "page": 1}
        pages = 0
        while url is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise UpstreamError(
                    SYSTEM,
                    f"{repo}#{number} has more than {MAX_PAGES * PER_PAGE} comments: "
                    "not all of them were searched",
                )
            response = self._call("GET", url, params=params, what=f"{repo}#{number}")
            items = _json(response, f"GET {_path(url)}")
            if not isinstance(items, list):
                raise UpstreamError(SYSTEM, f"GET {_path(url)} did not answer a list of comments")
            for item in items:
                yield _comment(item)
            url = self._next(response)
            params = None  # the next link carries them

    def create_comment(self, repo: str, number: int, body: str) -> IssueComment:
        _check_repo(repo)
        url = f"{self.api_url}/repos/{repo}/issues/{number}/comments"
        response = self._call("POST", url, json_body={"body": body}, what=f"{repo}#{number}")
        return _comment(_json(response, f"POST {_path(url)}"))

    def update_comment(self, repo: str, comment_id: int, body: str) -> IssueComment:
        _check_repo(repo)
        url = f"{self.api_url}/repos/{repo}/issues/comments/{comment_id}"
        response = self._call(
            "PATCH", url, json_body={"body": body}, what=f"comment {comment_id} in {repo}"
        )
        return _comment(_json(response, f"PATCH {_path(url)}"))

    # -- plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> requests.Response:
        invocation = f"{method} {_path(url)}"
        try:
            response = self._session.request(method, url, params=params, json=json_body)
        except ReadOnlyRefused:
            raise
        except requests.exceptions.Timeout:
            raise UpstreamUnavailable(
                SYSTEM, f"{invocation} got no answer within {self.timeout:g} s"
            ) from None
        except requests.exceptions.RetryError:
            raise UpstreamUnavailable(SYSTEM, f"{invocation} kept failing after retries") from None
        except requests.exceptions.ConnectionError as exc:
            if "timed out" in str(exc):
                # A read timeout of a retried method arrives here, as retries exhausted.
                raise UpstreamUnavailable(
                    SYSTEM, f"{invocation} got no answer within {self.timeout:g} s"
                ) from None
            why = "connection refused" if "Connection refused" in str(exc) else "connection failed"
            raise UpstreamUnavailable(SYSTEM, f"cannot connect to {self._host} ({why})") from None
        if response.status_code >= 400:
            raise _error(invocation, response, what)
        return response

    def _next(self, response: requests.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        if urlsplit(link).netloc != self._host:
            # The token is sent with every request: never to another host.
            raise UpstreamError(
                SYSTEM, f"the next page is on another host ({urlsplit(link).netloc})"
            )
        return str(link)


def _check_repo(repo: str) -> None:
    if not _REPO.match(repo):
        raise ValueError(f"expected a repository as owner/name, got {repo!r}")


def _path(url: str) -> str:
    return urlsplit(url).path


def _json(response: requests.Response, invocation: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(
            SYSTEM,
            f"{invocation} answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from None


def _comment(item: Any) -> IssueComment:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        raise UpstreamError(SYSTEM, "a comment without an id in GitHub's answer")
    user = item.get("user")
    if not isinstance(user, dict):
        user = {}
    return IssueComment(
        id=item["id"],
        body=str(item.get("body") or ""),
        author=str(user.get("login") or ""),
        url=str(item.get("html_url") or ""),
    )


def _message(response: requests.Response) -> str:
    """GitHub's own explanation: ``message``, and the messages of ``errors`` (a 422)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message") or "")]
    for error in body.get("errors") or []:
        if isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
        elif isinstance(error, str):
            parts.append(error)
    text = ": ".join(p for p in parts if p)
    return text if len(text) <= 300 else text[:299] + "…"


def _error(invocation: str, response: requests.Response, what: str) -> SourceError:
    status = response.status_code
    said = _message(response)
    head = f"{invocation} returned {status}" + (f" ({said})" if said else "")
    headers = response.headers
    limited = headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    if status == 429 or (status == 403 and limited):
        when = headers.get("retry-after")
        reset = headers.get("x-ratelimit-reset")
        later = (
            f" (retry after {when} s)"
            if when
            else f" (it resets at epoch {reset})"
            if reset
            else ""
        )
        return UpstreamUnavailable(
            SYSTEM,
            f"{head}: the token's rate limit is used up{later}; run the step again later",
            status=status,
        )
    if status == 401:
        return UpstreamAuthError(
            SYSTEM,
            f"{head}: the token is missing, expired or wrong — set GITHUB_TOKEN "
            "(in a workflow: `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`)",
            status=status,
        )
    if status == 403:
        wanted = headers.get("x-accepted-github-permissions", "")
        needs = f" (GitHub asks for: {wanted})" if wanted else ""
        return UpstreamAuthError(
            SYSTEM,
            f"{head}: the token may not write comments on {what}{needs} — give it "
            f"{WRITE_PERMISSION}. On a pull request from a fork, GITHUB_TOKEN can only read.",
            status=status,
        )
    if status == 404:
        return UpstreamNotFound(
            SYSTEM,
            f"{head}: {what} does not exist or this token cannot see it — check the repository "
            "and number (a private repository needs `contents: read` for GITHUB_TOKEN)",
        )
    if status == 422:
        return UpstreamError(SYSTEM, f"{head}: GitHub refused the comment", status=status)
    if status in RETRY_STATUSES:
        return UpstreamUnavailable(SYSTEM, f"{head}: GitHub is unavailable", status=status)
    return UpstreamError(SYSTEM, head, status=status)
