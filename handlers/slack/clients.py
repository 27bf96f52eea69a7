"""Slack Web API clients: one `WebClient` per bot token, and the token lookup.

What a client may retry in place depends on what it sends. The posting client (`patient`)
retries only *short* rate limits (``Retry-After`` ≤ `IN_PLACE_RETRY_AFTER_S`): a 429 means Slack
did not take the request. It never resends after a connection error or a 5xx, when Slack may
already have the message — `handlers.slack.poster` decides that, after looking. A longer
``Retry-After`` surfaces as an error and the job runs again later instead of holding a thread.
The progress client (`patient=False`) sends idempotent edits: it retries connection errors and
gives up on any rate limit, since progress is only decoration.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    RateLimitErrorRetryHandler,
    RetryState,
)
from slack_sdk.oauth.installation_store import InstallationStore

from bot.settings import SlackSettings

DEFAULT_API_URL = "https://slack.com/api/"
IN_PLACE_RETRY_AFTER_S = 5
# Slack answers in well under a second; a call that takes longer than this is stuck.
TIMEOUT_S = 15

log = logging.getLogger(__name__)


class ShortRateLimitRetry(RateLimitErrorRetryHandler):
    """Retry a 429 in place only when Slack asks for a short wait."""

    def __init__(self, *, max_retry_count: int = 2, max_wait: float = IN_PLACE_RETRY_AFTER_S):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        return retry_after(response.headers) <= self.max_wait


def retry_after(headers: dict[str, list[str]] | dict[str, str] | object) -> float:
    """Seconds from a ``Retry-After`` header (slack_sdk gives lists of values); 1 if absent."""
    if not isinstance(headers, dict):
        return 1.0
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(str(raw)))
            except ValueError:
                return 1.0
    return 1.0


def api_base(api_url: str | None) -> str:
    """slack_sdk joins ``base_url + method``, so the base must end with a slash."""
    return (api_url or DEFAULT_API_URL).rstrip("/") + "/"


# The check reports a failure in its own words; the SDK's log line about it would only repeat it.
_CHECK_LOG = logging.getLogger(__name__ + ".check")
_CHECK_LOG.setLevel(logging.CRITICAL)


def check(settings: SlackSettings) -> tuple[bool, str]:
    """`pipebot doctor`'s Slack line: the bot token works (``auth.test``)."""
    if settings.bot_token is None:
        return True, "OAuth installs: each workspace's token is checked when it is used"
    client = WebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=api_base(settings.api_url),
        timeout=10,
        logger=_CHECK_LOG,
    )
    client.retry_handlers = []
    try:
        found = client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        if error in ("invalid_auth", "not_authed", "token_revoked", "account_inactive"):
            return (
                False,
                f"Slack refused the bot token ({error}): copy it again (OAuth & Permissions)",
            )
        return False, f"Slack answered {error}"
    except (SlackClientError, URLError, OSError) as exc:
        return False, f"cannot reach the Slack API ({type(exc).__name__})"
    return True, f"bot {found.get('user')} in workspace {found.get('team')}"


def make_client(
    token: str | None, *, api_url: str | None, timeout: int = TIMEOUT_S, patient: bool = True
) -> WebClient:
    """A client for `token`: `patient` for posts, else for progress edits (see above)."""
    client = WebClient(token=token, base_url=api_base(api_url), timeout=timeout, logger=log)
    if patient:
        client.retry_handlers = [ShortRateLimitRetry(max_retry_count=2)]
    else:
        client.retry_handlers = [ConnectionErrorRetryHandler(max_retry_count=2)]
    return client


class Tokens(Protocol):
    """The bot token of a workspace (None when pipebot is not installed there)."""

    def bot_token(
        self, team: str, enterprise: str | None, enterprise_install: bool
    ) -> str | None: ...


class SingleToken:
    """One workspace, one bot token from the settings."""

    def __init__(self, token: str) -> None:
        self._token = token

    def bot_token(self, team: str, enterprise: str | None, enterprise_install: bool) -> str | None:
        return self._token


class InstalledTokens:
    """Many workspaces: the token each install saved through the OAuth flow."""

    def __init__(self, store: InstallationStore) -> None:
        self._store = store

    def bot_token(self, team: str, enterprise: str | None, enterprise_install: bool) -> str | None:
        bot = self._store.find_bot(
            enterprise_id=enterprise,
            team_id=None if enterprise_install else team,
            is_enterprise_install=enterprise_install,
        )
        return None if bot is None else bot.bot_token


class Clients:
    """`WebClient`s by workspace, built once per token (they are safe to share by threads)."""

    def __init__(self, tokens: Tokens, *, api_url: str | None) -> None:
        self._tokens = tokens
        self._api_url = api_url
        self._by_token: dict[tuple[str, bool], WebClient] = {}
        self._lock = threading.Lock()

    def for_team(
        self,
        team: str,
        enterprise: str | None = None,
        enterprise_install: bool = False,
        *,
        patient: bool = True,
    ) -> WebClient | None:
        token = self._tokens.bot_token(team, enterprise, enterprise_install)
        if token is None:
            return None
        with self._lock:
            client = self._by_token.get((token, patient))
            if client is None:
                client = make_client(token, api_url=self._api_url, patient=patient)
                self._by_token[(token, patient)] = client
            return client
