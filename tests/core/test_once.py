"""At least once, with idempotent effects: the "handled" mark commits with the effect it
guards, a failing run leaves nothing behind, a later run finishes from what was stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bot.alerts import Alert, AlertDesk
from bot.commands import Command, Commands, Request
from bot.conversation import Conversation
from bot.messages import InboundMessage, Reply
from bot.owners import OwnerDirectory
from bot.playbooks import default_commands
from bot.ports import Sources
from bot.settings import AlertSettings, OwnerSettings
from bot.store import Store


class BrokenAirflow:
    """An Orchestrator whose every call hits a bug (not an upstream error: those are facts)."""

    system = "Airflow"

    def __getattr__(self, name: str) -> Any:
        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"bug in {name}")

        return broken


def desk(store: Store, sources: Sources) -> AlertDesk:
    return AlertDesk(
        store=store,
        sources=sources,
        settings=AlertSettings(),  # type: ignore[call-arg]
        owners=OwnerDirectory.from_settings(OwnerSettings()),  # type: ignore[call-arg]
    )


def count(store: Store, table: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text(f"select count(*) from {table}")).scalar_one())


def test_a_failing_triage_leaves_nothing_then_its_last_attempt_posts_the_alert(
    store: Store,
) -> None:
    alerts = desk(store, Sources(airflow=BrokenAirflow()))  # type: ignore[arg-type]
    alert = Alert(source="airflow-callback", system="airflow", subject="orders_daily", run_id="r1")
    with pytest.raises(RuntimeError, match="bug in"):
        alerts.process(alert, delivery="d1", final=False)
    assert count(store, "incidents") == 0 and not store.events.seen(alert.key)
    [post] = alerts.process(alert, delivery="d1", final=True)
    assert "could not triage this alert" in " ".join(post.reply.notes)
    assert post.key.startswith("incident:") and post.key.endswith(":opened")
    # Run again (a retry after the post crashed): the same posts, no second occurrence.
    assert alerts.process(alert, delivery="d1", final=True) == [post]
    # Another delivery of the same alert (the bot's message in a channel): nothing to post.
    assert alerts.process(alert, delivery="d2") == []
    assert count(store, "incidents") == 1
    with store.engine.connect() as connection:
        occurrences = connection.execute(text("select occurrences from incidents")).scalar_one()
    assert occurrences == 1


def test_long_dag_ids_are_keyed_without_collisions_or_truncation_errors(store: Store) -> None:
    """Two DAG ids of 250 characters sharing a prefix, each failing: two incidents, two posts
    (keys and fingerprints longer than their columns are hashed; PostgreSQL refused them)."""
    alerts = desk(store, Sources())
    first, second = ("x" * 240) + "_first", ("x" * 240) + "_second"
    posts = []
    for dag in (first, second):
        alert = Alert(
            source="airflow-callback",
            system="airflow",
            subject=dag,
            run_id="manual__" + "9" * 200,
            task="t" * 200,
        )
        posts += alerts.process(alert, delivery=dag)
    assert len(posts) == 2 and posts[0].key != posts[1].key
    assert count(store, "incidents") == 2


def test_a_success_resolves_once(store: Store) -> None:
    alerts = desk(store, Sources())
    failed = Alert(source="a", system="airflow", subject="d", run_id="r1", task="t")
    alerts.process(failed, delivery="f")
    ok = Alert(source="a", system="airflow", subject="d", run_id="r2", status="succeeded")
    [resolved] = alerts.process(ok, delivery="ok")
    assert resolved.key.endswith(":resolved")
    assert alerts.process(ok, delivery="ok") == [resolved]  # replayed, not resolved twice


def test_a_retryable_answer_propagates_and_stores_nothing(sqlite_store: Store) -> None:
    runs: list[int] = []

    def boom(request: Request) -> Reply:
        runs.append(1)
        raise RuntimeError("bug")

    commands = Commands(
        [*default_commands(), Command(name="boom", usage="boom", summary="", run=boom)]
    )
    conversation = Conversation(store=sqlite_store, commands=commands, sources=Sources())
    message = InboundMessage(
        platform="slack",
        workspace="T1",
        channel="C1",
        thread="1.1",
        user="U1",
        text="boom",
        event_id="cmd:1",
    )
    with pytest.raises(RuntimeError):
        conversation.handle(message, retryable=True)
    assert not sqlite_store.events.seen(message.dedupe_key)
    assert count(sqlite_store, "messages") == 0
    final = conversation.handle(message)  # the last attempt answers with the failure
    assert final.title == "Sorry — that failed" and "reference" in final.text
    assert conversation.handle(message) == final  # and a later run gets that same answer
    assert len(runs) == 2
    assert count(sqlite_store, "messages") == 2  # the question and the answer, once


def test_marks_older_than_the_window_are_pruned(store: Store) -> None:
    from bot.store.tables import utcnow

    with store.sessions.begin() as session:
        store.events.mark(session, "k", result={"x": 1})
    assert store.events.prune(utcnow() - timedelta(days=1)) == 0
    assert store.events.prune(utcnow() + timedelta(seconds=1)) == 1
