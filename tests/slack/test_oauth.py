"""Multi-workspace installs: the OAuth flow on the real HTTP endpoint saves the installation in
the bot's database (slack_sdk's SQLAlchemy stores), and events from that workspace are answered
with its own bot token."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

from sqlalchemy import inspect, text

from tests.fakes.slack_api import OAUTH_BOT_TOKEN, FakeSlack
from tests.slack.conftest import answers, event_envelope, mention, slack_stack


def test_install_then_answer_in_the_new_workspace(fake_slack: FakeSlack, tmp_path: Path) -> None:
    with slack_stack(
        fake_slack, tmp_path, bot_token=None, client_id="111.222", client_secret="oauth-secret"
    ) as stack:
        tables = set(inspect(stack.store.engine).get_table_names())
        assert {"slack_installations", "slack_bots", "slack_oauth_states"} <= tables

        page = stack.http.get("/slack/install")
        assert page.status_code == 200
        link = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
        assert link is not None
        query = urllib.parse.parse_qs(
            urllib.parse.urlparse(link.group(1).replace("&amp;", "&")).query
        )
        assert query["client_id"] == ["111.222"]
        assert "chat:write" in query["scope"][0].split(",")
        state = query["state"][0]
        cookie = page.headers["set-cookie"].split(";")[0]

        done = stack.http.get(
            "/slack/oauth_redirect",
            params={"code": "code-123", "state": state},
            headers={"Cookie": cookie},
        )
        assert done.status_code == 200, done.text
        assert fake_slack.calls_to("oauth.v2.access")[0].params["code"] == "code-123"
        with stack.store.engine.connect() as connection:
            saved = connection.execute(text("select team_id, bot_token from slack_bots")).all()
        assert [row[0] for row in saved] == ["T2"]

        # A replayed state is refused: states are single-use.
        again = stack.http.get(
            "/slack/oauth_redirect",
            params={"code": "code-123", "state": state},
            headers={"Cookie": cookie},
        )
        assert again.status_code != 200

        envelope = event_envelope(mention("help", ts="1700004000.000100"))
        envelope["team_id"] = "T2"
        envelope["authorizations"][0]["team_id"] = "T2"
        assert stack.post(json.dumps(envelope), content_type="application/json").status_code == 200
        stack.settle()
        final = answers(fake_slack)
        assert len(final) == 1 and final[0].token == OAUTH_BOT_TOKEN
        assert {c.token for c in fake_slack.calls_to("chat.postMessage")} == {OAUTH_BOT_TOKEN}
