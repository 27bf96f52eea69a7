"""The fake Discord serves the real discord.py 2.7 client: login, gateway, REST and interactions."""

from __future__ import annotations

import asyncio
import json
import queue
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord_api import (
    ALERTS_CHANNEL_ID,
    BOT_ID,
    BOT_TOKEN,
    DATA_CHANNEL_ID,
    DATA_ENG_ROLE_ID,
    FLAG_EPHEMERAL,
    GUILD_ID,
    USER_ID,
    ClientThread,
    FakeDiscord,
    pointed_at,
)

WAIT = 5.0


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server, pointed_at(server):
        yield server


class Events:
    """What the client's event handlers saw, handed to the test thread through queues."""

    def __init__(self) -> None:
        self.queues: dict[str, queue.Queue[Any]] = {}

    def put(self, name: str, value: Any) -> None:
        self.queues.setdefault(name, queue.Queue()).put(value)

    def get(self, name: str, timeout: float = WAIT) -> Any:
        try:
            return self.queues.setdefault(name, queue.Queue()).get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {name} event within {timeout} s") from None

    def next_where(self, name: str, predicate: Callable[[Any], bool]) -> Any:
        while True:
            value = self.get(name)
            if predicate(value):
                return value


class QuickClient(discord.Client):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s pause before a re-IDENTIFY: it guards Discord's identify rate limit."""


def make_client(events: Events, intents: discord.Intents | None = None) -> discord.Client:
    # A short guild_ready_timeout: the fake sends every GUILD_CREATE right after READY.
    client = QuickClient(intents=intents or discord.Intents.default(), guild_ready_timeout=0.1)

    @client.event
    async def on_message(message: discord.Message) -> None:
        events.put("message", message)

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        events.put("interaction", interaction)

    @client.event
    async def on_thread_create(thread: discord.Thread) -> None:
        events.put("thread_create", thread)

    @client.event
    async def on_resumed() -> None:
        events.put("resumed", True)

    return client


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def bot(fake: FakeDiscord, events: Events) -> Iterator[ClientThread]:
    with ClientThread(make_client(events)) as running:
        yield running


def text_channel(bot: ClientThread, channel_id: str = DATA_CHANNEL_ID) -> discord.TextChannel:
    channel = bot.client.get_channel(int(channel_id))
    assert isinstance(channel, discord.TextChannel)
    return channel


def raw(
    fake: FakeDiscord, method: str, path: str, body: Any = None, *, token: str | None = BOT_TOKEN
) -> tuple[int, dict[str, str], Any]:
    """One HTTP call without discord.py, to see status, headers and body as sent."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(fake.api_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bot {token}")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            text = response.read().decode()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, dict(error.headers), json.loads(text) if text else None


def test_the_client_logs_in_identifies_and_caches_the_guild(
    fake: FakeDiscord, bot: ClientThread
) -> None:
    fake.wait_ready()
    client = bot.client
    assert client.user is not None and str(client.user.id) == BOT_ID and client.user.bot
    assert client.application_id == int(fake.application_id)
    [guild] = client.guilds
    assert (guild.id, guild.name, guild.unavailable) == (int(GUILD_ID), "data-team", False)
    assert {c.name for c in guild.text_channels} == {"data", "alerts"}
    assert text_channel(bot, ALERTS_CHANNEL_ID).guild is guild
    role = guild.get_role(int(DATA_ENG_ROLE_ID))
    assert role is not None and role.name == "data-eng"
    assert guild.me is not None and guild.me.id == int(BOT_ID)
    me = text_channel(bot).permissions_for(guild.me)
    assert me.send_messages and me.create_public_threads and me.embed_links

    [identify] = fake.identifies
    assert identify["intents"] == discord.Intents.default().value
    assert identify["token"] == BOT_TOKEN
    assert fake.calls_to("GET", "/users/@me")
    assert fake.calls_to("GET", "/oauth2/applications/@me")


def test_a_mention_reaches_on_message_and_content_needs_the_intent(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    sent = fake.mention("status orders_etl", roles=[DATA_ENG_ROLE_ID])
    message = events.get("message")
    assert message.id == int(sent.id)
    assert message.content == f"<@{BOT_ID}> status orders_etl"
    assert bot.client.user in message.mentions
    assert message.channel.id == int(DATA_CHANNEL_ID)
    assert isinstance(message.author, discord.Member)
    assert [r.id for r in message.author.roles if not r.is_default()] == [int(DATA_ENG_ROLE_ID)]

    # Without the privileged MESSAGE_CONTENT intent Discord blanks other people's messages.
    fake.message("just chatting", channel_id=DATA_CHANNEL_ID, author_id=USER_ID, guild_id=GUILD_ID)
    assert events.get("message").content == ""
    assert fake.messages_in(DATA_CHANNEL_ID)[-1]["content"] == "just chatting"


def test_send_with_an_embed_is_recorded_kept_and_echoed(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    embed = discord.Embed(title="orders_etl", description="**failed** at 03:12")
    sent = bot.run(text_channel(bot).send(embed=embed))

    [call] = fake.calls_to("POST", rf"/channels/{DATA_CHANNEL_ID}/messages")
    assert call.json["embeds"][0]["title"] == "orders_etl"
    assert call.status == 200
    [kept] = fake.messages_in(DATA_CHANNEL_ID)
    assert kept["id"] == str(sent.id) and kept["embeds"][0]["description"] == "**failed** at 03:12"
    assert kept["author"]["id"] == BOT_ID
    assert sent.embeds[0].title == "orders_etl"
    # Discord echoes the bot's own post on the gateway; bots must ignore their own messages.
    echoed = events.get("message")
    assert echoed.id == sent.id and echoed.author.id == int(BOT_ID)
    fetched = bot.run(text_channel(bot).fetch_message(sent.id))
    assert fetched.embeds[0].title == "orders_etl"


def test_long_content_is_refused_like_discord(fake: FakeDiscord, bot: ClientThread) -> None:
    with pytest.raises(discord.HTTPException) as refused:
        bot.run(text_channel(bot).send("x" * 2001))
    assert refused.value.status == 400 and refused.value.code == 50035
    assert "content" in refused.value.text
    assert fake.messages_in(DATA_CHANNEL_ID) == []


def test_a_thread_from_a_mention_gets_the_message_id_and_takes_posts(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    fake.mention("why did orders_etl fail?")
    message = events.get("message")
    thread = bot.run(message.create_thread(name="orders_etl failure"))
    assert thread.id == message.id and thread.parent_id == int(DATA_CHANNEL_ID)
    created = events.get("thread_create")
    assert created.id == thread.id and bot.client.get_channel(thread.id) is not None

    reply = bot.run(thread.send("Looking into it"))
    assert reply.channel.id == thread.id
    [kept] = fake.messages_in(str(thread.id))
    assert kept["content"] == "Looking into it" and kept["guild_id"] == GUILD_ID
    assert fake.channel(str(thread.id))["message_count"] == 1  # type: ignore[index]

    with pytest.raises(discord.HTTPException) as again:
        bot.run(message.create_thread(name="again"))
    assert again.value.code == 160004


def test_a_slash_command_is_deferred_then_followed_up_and_edited(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    sent = fake.slash(options=[{"type": 1, "name": "status", "options": []}])
    interaction: discord.Interaction = events.get("interaction")
    assert (
        interaction.id == int(sent.id)
        and interaction.type is discord.InteractionType.application_command
    )
    assert dict(interaction.data or {})["name"] == "pipebot"
    assert interaction.channel is not None and interaction.channel.id == int(DATA_CHANNEL_ID)
    assert isinstance(interaction.user, discord.Member) and interaction.user.id == int(USER_ID)

    deferred = bot.run(interaction.response.defer(thinking=True))
    assert deferred is not None and deferred.is_thinking()
    [callback] = fake.wait_call("POST", sent.callback_path)
    assert callback.json == {"type": 5} and callback.at > sent.dispatched_at
    [loading] = fake.messages_in(DATA_CHANNEL_ID)
    assert loading["flags"] & 128 and loading["webhook_id"] == fake.application_id

    # The first follow-up after a defer fills the "thinking…" message; later ones are new.
    first = bot.run(interaction.followup.send("orders_etl: failed", wait=True))
    assert first.id == int(loading["id"])
    second = bot.run(interaction.followup.send("part 2", wait=True))
    assert second.id != first.id
    edited = bot.run(interaction.edit_original_response(content="orders_etl: failed (retried)"))
    assert edited.id == first.id
    contents = [m["content"] for m in fake.messages_in(DATA_CHANNEL_ID)]
    assert contents == ["orders_etl: failed (retried)", "part 2"]
    assert fake.wait_call("PATCH", sent.webhook_path + "/messages/@original")


def test_an_ephemeral_follow_up_is_kept_flagged_but_not_listed(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    fake.slash(options=[])
    interaction: discord.Interaction = events.get("interaction")
    bot.run(interaction.response.send_message("working…"))
    bot.run(interaction.followup.send("only you", ephemeral=True))
    kept = fake.messages_in(DATA_CHANNEL_ID)
    assert [(m["content"], bool(m["flags"] & FLAG_EPHEMERAL)) for m in kept] == [
        ("working…", False),
        ("only you", True),
    ]
    history = bot.run(_history(text_channel(bot)))
    assert history == ["working…"]


async def _history(channel: discord.TextChannel) -> list[str]:
    return [m.content async for m in channel.history(limit=10)]


def test_an_expired_token_fails_the_follow_up_and_the_callback(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    fake.slash(options=[])
    interaction: discord.Interaction = events.get("interaction")
    bot.run(interaction.response.defer(thinking=True))
    fake.expire_interactions()
    with pytest.raises(discord.HTTPException) as dead:
        bot.run(interaction.followup.send("too late", wait=True))
    assert (dead.value.status, dead.value.code) == (401, 50027)

    fake.slash(options=[])
    late: discord.Interaction = events.get("interaction")
    fake.expire_interactions()
    with pytest.raises(discord.NotFound) as unknown:
        bot.run(late.response.defer())
    assert unknown.value.code == 10062


def test_a_second_callback_is_refused(fake: FakeDiscord, bot: ClientThread) -> None:
    sent = fake.slash(options=[])
    assert raw(fake, "POST", sent.callback_path, {"type": 5}, token=None)[0] == 204
    status, _, body = raw(fake, "POST", sent.callback_path, {"type": 5}, token=None)
    assert (status, body["code"]) == (400, 40060)


def test_a_repeated_nonce_returns_the_first_message(fake: FakeDiscord, bot: ClientThread) -> None:
    channel = text_channel(bot)
    first = bot.run(channel.send("posted once", nonce=424242))
    second = bot.run(channel.send("posted once", nonce=424242))
    assert first.id == second.id
    assert len(fake.calls_to("POST", rf"/channels/{DATA_CHANNEL_ID}/messages")) == 2
    assert [m["content"] for m in fake.messages_in(DATA_CHANNEL_ID)] == ["posted once"]


def test_a_wrong_token_fails_login(fake: FakeDiscord) -> None:
    async def login() -> None:
        async with discord.Client(intents=discord.Intents.default()) as client:
            await client.login("not-the-token")

    with pytest.raises(discord.LoginFailure):
        asyncio.run(login())
    [call] = fake.calls_to("GET", "/users/@me")
    assert call.status == 401


def test_a_wrong_token_on_the_gateway_is_closed_with_4004(fake: FakeDiscord) -> None:
    async def identify() -> int | None:
        url = fake.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            hello = await ws.receive_json(timeout=WAIT)
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 2, "d": {"token": "nope", "intents": 1}})
            closing = await ws.receive(timeout=WAIT)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            return ws.close_code

    assert asyncio.run(identify()) == 4004


def test_a_429_is_retried_by_discord_py(fake: FakeDiscord, bot: ClientThread) -> None:
    fake.fail_next("POST", r"/channels/\d+/messages", status=429)
    bot.run(text_channel(bot).send("after a rate limit"))
    statuses = [c.status for c in fake.calls_to("POST", rf"/channels/{DATA_CHANNEL_ID}/messages")]
    assert statuses == [429, 200]
    assert [m["content"] for m in fake.messages_in(DATA_CHANNEL_ID)] == ["after a rate limit"]


def test_a_dropped_gateway_is_resumed_and_missed_events_replayed(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    fake.drop_connections()
    fake.mention("are you there?")  # sent while the client may be reconnecting
    assert events.get("resumed") is True
    assert events.get("message").content.endswith("are you there?")
    [resume] = fake.resumes
    assert resume["token"] == BOT_TOKEN and resume["seq"] > 0
    assert len(fake.identifies) == 1


def test_an_invalid_session_makes_the_client_identify_again(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    fake.invalidate_sessions()
    fake.wait_ready()
    assert len(fake.identifies) == 2
    assert fake.resumes and fake.resumes[-1]["token"] == BOT_TOKEN
    fake.mention("still there?")
    assert events.get("message").content.endswith("still there?")


def test_dispatch_sends_any_event_as_is(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    @bot.client.event
    async def on_guild_role_create(role: discord.Role) -> None:
        events.put("role", role)

    fake.dispatch(
        "GUILD_ROLE_CREATE",
        {"guild_id": GUILD_ID, "role": {"id": "820000000000000009", "name": "on-call"}},
    )
    role = events.get("role")
    assert (role.id, role.name, role.guild.id) == (820000000000000009, "on-call", int(GUILD_ID))


def test_raw_http_answers_carry_discord_headers(fake: FakeDiscord) -> None:
    status, headers, body = raw(fake, "GET", "/gateway/bot")
    assert status == 200 and body["url"] == fake.gateway_url and body["shards"] == 1
    assert headers["Content-Type"] == "application/json"
    assert headers["X-RateLimit-Remaining"] == "49" and "X-RateLimit-Bucket" in headers
    assert raw(fake, "GET", "/users/@me", token="bad")[2] == {
        "message": "401: Unauthorized",
        "code": 0,
    }
    assert raw(fake, "GET", "/no/such/route")[:3:2] == (
        404,
        {"message": "404: Not Found", "code": 0},
    )
    assert fake.calls_to("GET", "/no/such/route")


def test_app_commands_sync_and_a_subcommand_runs_through_the_tree(
    fake: FakeDiscord, events: Events
) -> None:
    client = make_client(events)
    tree = app_commands.CommandTree(client)
    group = app_commands.Group(name="pipebot", description="Ask pipebot")

    async def dag_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=n, value=n)
            for n in ("orders_etl", "orders_dbt")
            if current in n
        ]

    @group.command(name="status", description="Status of a DAG")
    @app_commands.autocomplete(dag=dag_names)
    async def status(interaction: discord.Interaction, dag: str) -> None:
        await interaction.response.send_message(f"{dag}: ok")
        events.put("status", dag)

    tree.add_command(group)
    with ClientThread(client) as bot:
        synced = bot.run(tree.sync())
        assert [c.name for c in synced] == ["pipebot"] and synced[0].id > 0
        [stored] = fake.commands()
        assert stored["options"][0]["name"] == "status"

        typed = fake.autocomplete(
            options=[
                {
                    "type": 1,
                    "name": "status",
                    "options": [{"type": 3, "name": "dag", "value": "orders"}],
                }
            ]
        )
        [choices] = fake.wait_call("POST", typed.callback_path)
        assert choices.json["type"] == 8
        assert [c["value"] for c in choices.json["data"]["choices"]] == ["orders_etl", "orders_dbt"]

        sent = fake.slash(
            options=[
                {
                    "type": 1,
                    "name": "status",
                    "options": [{"type": 3, "name": "dag", "value": "orders_etl"}],
                }
            ]
        )
        assert sent.payload["data"]["id"] == stored["id"]
        assert events.get("status") == "orders_etl"
        fake.wait_call("POST", sent.callback_path)
        [answer] = fake.messages_in(DATA_CHANNEL_ID)
        assert (
            answer["content"] == "orders_etl: ok"
            and answer["interaction_metadata"]["id"] == sent.id
        )


def test_a_button_press_updates_its_message(fake: FakeDiscord, events: Events) -> None:
    class Retry(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Retry", custom_id="pipebot:retry orders_etl")
        async def retry(
            self, interaction: discord.Interaction, button: discord.ui.Button[Retry]
        ) -> None:
            await interaction.response.edit_message(content="retrying orders_etl…", view=None)
            events.put("retried", True)

    async def post(client: discord.Client) -> discord.Message:
        client.add_view(Retry())
        channel = client.get_channel(int(DATA_CHANNEL_ID))
        assert isinstance(channel, discord.TextChannel)
        return await channel.send("orders_etl failed", view=Retry())

    with ClientThread(make_client(events)) as bot:
        message = bot.run(post(bot.client))
        pressed = fake.press(custom_id="pipebot:retry orders_etl", message_id=str(message.id))
        assert events.get("retried") is True
        [callback] = fake.wait_call("POST", pressed.callback_path)
        assert callback.json["type"] == 7
        [kept] = fake.messages_in(DATA_CHANNEL_ID)
        assert kept["content"] == "retrying orders_etl…" and kept["components"] == []


def test_a_direct_message_and_the_dm_channel(
    fake: FakeDiscord, bot: ClientThread, events: Events
) -> None:
    sent = fake.dm("hello bot")
    message = events.get("message")
    assert message.guild is None and message.content == "hello bot"
    assert isinstance(message.channel, discord.DMChannel)
    bot.run(message.channel.send("hello human"))
    assert [m["content"] for m in fake.messages_in(sent.channel_id)] == ["hello bot", "hello human"]

    user = bot.run(bot.client.fetch_user(int(USER_ID)))
    dm = bot.run(user.create_dm())
    assert dm.id == int(sent.channel_id)
