"""Slack wired to the core: the Bolt app for both connection modes, and its place in the server.

Request path (HTTP ``POST /slack/events`` or a Socket Mode envelope) — acknowledge fast:

1. HTTP: the body arrives bounded in size and time (`handlers.front_door.BodyLimit`); the
   signature is checked on the raw bytes before anything parses them (`signature.verify`), so
   an unsigned request costs a hash and gets 401 with one log line;
2. off the event loop, Bolt parses the signed request and a listener turns the payload into a
   `SlackTurn` (`handlers.slack.inbound`) and persists it as a job keyed by the event
   (`Server.submit`) — a Slack retry or an ``app_mention``/``message`` twin finds the key taken
   and is only acknowledged; a signed body Bolt cannot parse gets 400;
3. Bolt answers 200 (``process_before_response=True``: the ack is sent after the job is stored,
   so an acknowledged event is never lost). Nothing on this path calls Slack.

The answer is built by `SlackWorker` on the work engine and posted by `SlackPoster`.
Connection modes: Socket Mode when an app token is set (or ``PIPEBOT_SLACK__MODE=socket``),
``POST /slack/events`` when a signing secret is set; OAuth install routes when a client id and
secret are set (multi-workspace).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Assistant, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.error import BoltError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import metrics
from bot.alerts import AlertDesk, AlertMatchers
from bot.commands import Command
from bot.errors import ConfigError
from bot.messages import ThreadRef
from bot.settings import AlertSettings, SlackSettings
from bot.store import Store
from handlers.deliveries import Deliveries
from handlers.server import Server
from handlers.slack import signature
from handlers.slack.alerts import ALERT_MESSAGE_JOB, SlackAlerts, alert_message
from handlers.slack.blocks import ACTION_PREFIX, LINK_ACTION_PREFIX
from handlers.slack.clients import Clients, InstalledTokens, SingleToken, Tokens, make_client
from handlers.slack.inbound import PLATFORM, SlackTurn, from_action, from_command, from_event
from handlers.slack.oauth import authorize, installation_store, oauth_settings
from handlers.slack.poster import SlackPoster
from handlers.slack.worker import THREAD_STARTED_JOB, TURN_JOB, Handle, SlackWorker

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"

# What the app subscribes to and calls; deploy/slack-app-manifest.yaml must match (tested).
BOT_EVENTS = (
    "app_mention",
    "assistant_thread_context_changed",
    "assistant_thread_started",
    "message.channels",
    "message.groups",
    "message.im",
)
WEB_API_METHODS = (
    "apps.connections.open",
    "assistant.threads.setStatus",
    "assistant.threads.setSuggestedPrompts",
    "auth.test",
    "chat.appendStream",
    "chat.delete",
    "chat.postEphemeral",
    "chat.postMessage",
    "chat.startStream",
    "chat.stopStream",
    "chat.update",
    # files_upload_v2 (charts): these two, with the upload itself in between.
    "files.completeUploadExternal",
    "files.getUploadURLExternal",
    "oauth.v2.access",
)

# The `source` of Slack's events in metrics (HTTP and Socket Mode alike).
SOURCE = "slack"


class _QuietTokenWarning(logging.Filter):
    """Bolt also reads SLACK_BOT_TOKEN from the environment and warns that the client given to
    it wins; pipebot always hands it a client built from that very token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_LOG = logging.getLogger("slack_bolt")
_BOLT_LOG.addFilter(_QuietTokenWarning())


def connection_mode(settings: SlackSettings) -> str:
    """``socket`` or ``http``: ``auto`` means Socket Mode when an app token is set."""
    if settings.mode == "auto":
        return "socket" if settings.app_token is not None else "http"
    return settings.mode


@dataclass(frozen=True)
class AlertIntake:
    """What the Slack channel needs to follow up on alerts (built in bot/main.py)."""

    desk: AlertDesk
    matchers: AlertMatchers
    settings: AlertSettings
    # Runs the alert and digest jobs; the Slack channel adds itself as Slack's sender.
    deliveries: Deliveries


class SlackChannel:
    """Everything Slack needs in `pipebot serve`; `install` plugs it into a `Server`."""

    def __init__(
        self,
        *,
        settings: SlackSettings,
        bolt: App,
        tokens: Tokens,
        handle: Handle,
        commands: Iterable[Command],
        store: Store,
        server: Server,
        redact: Callable[[str], str],
        alerts: AlertIntake | None = None,
    ) -> None:
        self.settings = settings
        self.bolt = bolt
        self.mode = connection_mode(settings)
        self._store = store
        self._server = server
        clients = Clients(tokens, api_url=settings.api_url)
        self.poster = SlackPoster(store, clients)
        self.worker = SlackWorker(
            handle=handle,
            commands=commands,
            clients=clients,
            poster=self.poster,
            redact=redact,
            progress_interval=settings.progress_interval,
            stream=settings.stream,
        )
        self.alerts = (
            SlackAlerts(
                desk=alerts.desk,
                matchers=alerts.matchers,
                poster=self.poster,
                redact=redact,
                deliveries=alerts.deliveries,
                follow_bots=alerts.settings.follow_bots,
            )
            if alerts is not None
            else None
        )
        self.socket: SocketModeHandler | None = None
        if self.mode == "socket":
            app_token = settings.app_token
            if app_token is None:
                raise ConfigError("Socket Mode needs PIPEBOT_SLACK__APP_TOKEN (or SLACK_APP_TOKEN)")
            self.socket = SocketModeHandler(
                bolt, app_token=app_token.get_secret_value(), web_client=bolt.client
            )
        self._listen()

    @classmethod
    def build(
        cls,
        settings: SlackSettings,
        *,
        handle: Handle,
        commands: Iterable[Command],
        store: Store,
        server: Server,
        redact: Callable[[str], str],
        alerts: AlertIntake | None = None,
    ) -> SlackChannel:
        """Build from settings: a bot token (one workspace) or OAuth (many)."""
        mode = connection_mode(settings)
        if mode == "http" and settings.signing_secret is None:
            raise ConfigError(
                "Slack HTTP mode needs PIPEBOT_SLACK__SIGNING_SECRET (or SLACK_SIGNING_SECRET); "
                "for Socket Mode set PIPEBOT_SLACK__APP_TOKEN"
            )
        signing = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
        # Listeners only persist a job, on the request's own thread (process_before_response);
        # Bolt's executor would run lazy listeners, which pipebot has none of.
        executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bolt")
        common: dict[str, Any] = {
            "name": "pipebot",
            "logger": _BOLT_LOG,
            "signing_secret": signing,
            "process_before_response": True,
            "listener_executor": executor,
        }
        try:
            bolt, tokens = cls._bolt(settings, store, common)
        except BoltError as exc:
            # e.g. auth.test refused the bot token; start-up stops with one readable line.
            raise ConfigError(f"Slack refused the configuration: {exc}") from None
        return cls(
            settings=settings,
            bolt=bolt,
            tokens=tokens,
            handle=handle,
            commands=commands,
            store=store,
            server=server,
            redact=redact,
            alerts=alerts,
        )

    @staticmethod
    def _bolt(settings: SlackSettings, store: Store, common: dict[str, Any]) -> tuple[App, Tokens]:
        tokens: Tokens
        if settings.oauth:
            client_id = str(settings.client_id)
            secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
            client = make_client(None, api_url=settings.api_url)
            store_ = installation_store(store.engine, client_id=client_id)
            cached = authorize(store_, client_id=client_id, client_secret=secret, client=client)
            bolt = App(
                client=client,
                installation_store=store_,
                # Bolt accepts an `Authorize` instance here; its annotation says "callable".
                authorize=cached,  # type: ignore[arg-type]
                oauth_settings=oauth_settings(
                    store.engine,
                    client_id=client_id,
                    client_secret=secret,
                    scopes=settings.scopes,
                    redirect_uri=settings.redirect_uri,
                    store=store_,
                ),
                **common,
            )
            tokens = InstalledTokens(store_)
        elif settings.bot_token is not None:
            token = settings.bot_token.get_secret_value()
            bolt = App(client=make_client(token, api_url=settings.api_url), **common)
            tokens = SingleToken(token)
        else:
            raise ConfigError(
                "Slack needs PIPEBOT_SLACK__BOT_TOKEN (one workspace) or "
                "PIPEBOT_SLACK__CLIENT_ID and PIPEBOT_SLACK__CLIENT_SECRET (OAuth installs)"
            )
        return bolt, tokens

    def install(self) -> None:
        """Register routes, job kinds and services with the server."""
        metrics.declare_source(SOURCE)
        metrics.declare_platform(PLATFORM)
        self._server.add_jobs(self.worker.jobs())
        if self.alerts is not None:
            self._server.add_jobs(self.alerts.jobs())
            self.alerts.register()
        self._server.add_routes(self.routes())
        if self.socket is not None:
            self._server.add_service(_SocketMode(self.socket))

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        if self.settings.signing_secret is not None:
            routes.append(Route(EVENTS_PATH, self._events, methods=["POST"]))
        flow = self.bolt.oauth_flow
        if flow is not None:
            routes.append(Route(flow.install_path, self._oauth, methods=["GET"]))
            routes.append(Route(flow.redirect_uri_path, self._oauth, methods=["GET"]))
        return routes

    # --- HTTP adapter (bolt's Starlette converters; dispatch off the event loop) --------------

    async def _events(self, request: Request) -> Response:
        started = time.perf_counter()
        raw = await request.body()  # already read and bounded by the front door
        secret = self.settings.signing_secret
        refused = signature.verify(
            raw, request.headers, secret.get_secret_value() if secret else ""
        )
        if refused is not None:
            log.warning("slack request refused", extra={"status": 401, "reason": refused})
            return JSONResponse({"error": refused}, status_code=401)
        # Parsing and the listener's store write run off the event loop.
        bolt_response = await run_in_threadpool(self._dispatch, request, raw)
        response = to_starlette_response(bolt_response)
        metrics.ACK_LATENCY.labels(SOURCE).observe(time.perf_counter() - started)
        return response

    def _dispatch(self, request: Request, raw: bytes) -> BoltResponse:
        try:
            bolt_request: BoltRequest = to_bolt_request(request, raw)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            # Signed, so Slack's (or a holder of the secret's): say what was wrong, no traceback.
            reason = f"the request body cannot be read: {type(exc).__name__}"
            log.warning("slack request refused", extra={"status": 400, "reason": reason})
            return BoltResponse(status=400, body=reason)
        return self.bolt.dispatch(bolt_request)

    async def _oauth(self, request: Request) -> Response:
        flow = self.bolt.oauth_flow
        assert flow is not None  # the route exists only with an OAuth flow
        bolt_request = to_bolt_request(request, await request.body())
        if request.url.path == flow.install_path:
            bolt_response = await run_in_threadpool(flow.handle_installation, bolt_request)
        else:
            bolt_response = await run_in_threadpool(flow.handle_callback, bolt_request)
        return to_starlette_response(bolt_response)

    # --- listeners: translate, persist, acknowledge ------------------------------------------

    def _listen(self) -> None:
        assistant = Assistant(logger=_BOLT_LOG)

        @assistant.thread_started
        def thread_started(ack: Ack, body: dict[str, Any]) -> None:
            thread = (body.get("event") or {}).get("assistant_thread") or {}
            team = str(body.get("team_id") or "")
            payload = {
                "team": team,
                "enterprise": body.get("enterprise_id"),
                "enterprise_install": bool(
                    ((body.get("authorizations") or [{}])[0]).get("is_enterprise_install")
                ),
                "channel": thread.get("channel_id"),
                "thread": thread.get("thread_ts"),
            }
            if payload["channel"] and payload["thread"]:
                key = f"{PLATFORM}:{team}:evt:{body.get('event_id')}"
                self._submit(key, THREAD_STARTED_JOB, payload)
            ack()

        @assistant.user_message
        def assistant_message(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
            turn = from_event(body, bot_user_id=context.bot_user_id, assistant=True)
            self._accept(turn, "assistant_message")
            ack()

        @assistant.thread_context_changed
        def context_changed(ack: Ack) -> None:
            ack()  # pipebot keeps no per-thread context beyond its own conversation memory

        self.bolt.use(assistant)

        @self.bolt.command(re.compile(r"^/"))
        def command(ack: Ack, body: dict[str, Any]) -> None:
            self._accept(from_command(body), "command")
            ack()

        def event(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
            if self.alerts is not None:
                found = alert_message(body, bot_user_id=context.bot_user_id)
                if found is not None:
                    key = f"{PLATFORM}:{found['team']}:msg:{found['channel']}:{found['ts']}"
                    self._submit(key, ALERT_MESSAGE_JOB, found)
                    ack()
                    return
            turn = from_event(body, bot_user_id=context.bot_user_id)
            if turn is not None and turn.follow_up and not self._known_thread(turn):
                turn = None  # a thread pipebot is not part of
            self._accept(turn, str((body.get("event") or {}).get("type")))
            ack()

        self.bolt.event("app_mention")(event)
        self.bolt.event("message")(event)

        @self.bolt.action(re.compile("^" + re.escape(ACTION_PREFIX)))
        def button(ack: Ack, body: dict[str, Any]) -> None:
            self._accept(from_action(body), "button")
            ack()

        @self.bolt.action(re.compile("^" + re.escape(LINK_ACTION_PREFIX)))
        def link_button(ack: Ack) -> None:
            ack()  # the browser opens the link; Slack still expects an answer

    def _accept(self, turn: SlackTurn | None, kind: str) -> None:
        if turn is None:
            metrics.EVENTS_RECEIVED.labels(SOURCE).inc()  # received; nothing to answer
            return
        accepted = self._submit(turn.job_key, TURN_JOB, turn)
        if not accepted:
            log.info("duplicate Slack delivery", extra={"key": turn.job_key, "kind": kind})

    def _submit(self, key: str, job: str, payload: object) -> bool:
        accepted = self._server.submit(key, job, payload)
        metrics.EVENTS_RECEIVED.labels(SOURCE).inc()
        if not accepted:
            metrics.EVENTS_DEDUPLICATED.labels(SOURCE).inc()
        return accepted

    def _known_thread(self, turn: SlackTurn) -> bool:
        ref = ThreadRef(
            platform=PLATFORM, workspace=turn.team, channel=turn.channel, thread=turn.conversation
        )
        return self._store.threads.find(ref) is not None


class _SocketMode:
    name = "slack-socket-mode"

    def __init__(self, handler: SocketModeHandler) -> None:
        self._handler = handler

    def start(self) -> None:
        # Returns once connected; afterwards the client reconnects by itself.
        self._handler.connect()  # type: ignore[no-untyped-call]

    def stop(self, timeout: float = 10.0) -> None:
        self._handler.close()  # type: ignore[no-untyped-call]

    def alive(self) -> bool:
        return bool(self._handler.client.is_connected())
