"""Multi-workspace installs: slack_sdk's SQLAlchemy stores on the bot's own database.

A workspace installs pipebot at ``/slack/install``; Slack redirects to ``/slack/oauth_redirect``
where Bolt exchanges the code (``oauth.v2.access``) and saves the installation. Bot tokens live
in ``slack_bots`` / ``slack_installations``, one-time OAuth states in ``slack_oauth_states``.

The stores create their tables at start-up (``create_tables()`` only creates what is missing).
They are not Alembic-managed: the bot's migration test compares the migrated schema with the
bot's own models, which do not know these slack_sdk tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# Slack's own advice: a state is single-use and short-lived.
STATE_EXPIRATION_S = 600
TABLES = ("slack_installations", "slack_bots", "slack_oauth_states")


def installation_store(engine: Engine, *, client_id: str) -> SQLAlchemyInstallationStore:
    store = SQLAlchemyInstallationStore(client_id=client_id, engine=engine)
    store.create_tables()  # type: ignore[no-untyped-call]
    return store


def oauth_settings(
    engine: Engine,
    *,
    client_id: str,
    client_secret: str,
    scopes: Sequence[str],
    redirect_uri: str | None,
    store: SQLAlchemyInstallationStore,
) -> OAuthSettings:
    state_store = SQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine)
    state_store.create_tables()  # type: ignore[no-untyped-call]
    return OAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(scopes),
        redirect_uri=redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=state_store,
        state_expiration_seconds=STATE_EXPIRATION_S,
    )


def authorize(
    store: SQLAlchemyInstallationStore, *, client_id: str, client_secret: str, client: WebClient
) -> InstallationStoreAuthorize:
    """Bolt's installation-store authorize, with its cache on: without it every incoming
    request would cost an ``auth.test`` call before it is acknowledged."""
    return InstallationStoreAuthorize(
        logger=logging.getLogger("slack_bolt"),
        installation_store=store,
        client_id=client_id,
        client_secret=client_secret,
        bot_only=True,
        cache_enabled=True,
        client=client,
    )
