"""The ``/pipebot`` app command group: the chat commands as Discord subcommands.

Each subcommand only turns its options into the line a person would type in Slack or the
console (``/pipebot dag dag_id:orders_daily`` → ``dag orders_daily``) and hands it to `Accept`;
the core routes that line like any other, so the commands mean the same everywhere. DAG ids
and model names autocomplete from the connectors (`bot.names.Names`: cached, bounded in time).

Registering them with Discord is an explicit step (`pipebot discord sync`): Discord allows 200
command creations a day per server, so a start never syncs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

import discord
from discord import app_commands

from bot.names import Names
from handlers.discord.inbound import command_line

# Answers an interaction with the command line it stands for.
Accept = Callable[[discord.Interaction, str], Awaitable[None]]
Choice = app_commands.Choice


def pipebot_group(accept: Accept, names: Names) -> app_commands.Group:
    group = app_commands.Group(
        name="pipebot",
        description="Read-only data-engineering help: Airflow, dbt and the warehouse",
    )

    async def dags(_interaction: discord.Interaction, typed: str) -> list[Choice[str]]:
        # The lookup may wait (bounded) for a connector; the gateway's loop must not.
        found = await asyncio.to_thread(names.dags, typed)
        return [Choice(name=n[:100], value=n[:100]) for n in found]

    async def models(_interaction: discord.Interaction, typed: str) -> list[Choice[str]]:
        found = await asyncio.to_thread(names.models, typed)
        return [Choice(name=n[:100], value=n[:100]) for n in found]

    @group.command(name="help", description="What pipebot can do")
    async def help_(interaction: discord.Interaction) -> None:
        await accept(interaction, "help")

    @group.command(
        name="status", description="Airflow health, failed runs, last dbt run, stale sources"
    )
    async def status(interaction: discord.Interaction) -> None:
        await accept(interaction, "status")

    @group.command(name="dag", description="A DAG, its recent runs and owners")
    @app_commands.describe(dag_id="The Airflow DAG id")
    @app_commands.autocomplete(dag_id=dags)
    async def dag(interaction: discord.Interaction, dag_id: str) -> None:
        await accept(interaction, command_line("dag", dag_id))

    @group.command(name="runs", description="Recent DAG runs: all DAGs, or one")
    @app_commands.describe(dag_id="Only this DAG (default: all)")
    @app_commands.autocomplete(dag_id=dags)
    async def runs(interaction: discord.Interaction, dag_id: str | None = None) -> None:
        await accept(interaction, command_line("runs", dag_id))

    @group.command(name="triage", description="What broke, why, what is affected, who owns it")
    @app_commands.describe(
        target="A DAG id, or `dbt` for the latest dbt run",
        run_id="A run id (default: the newest failed run)",
    )
    @app_commands.autocomplete(target=dags)
    async def triage(
        interaction: discord.Interaction, target: str, run_id: str | None = None
    ) -> None:
        await accept(interaction, command_line("triage", target, run_id))

    @group.command(name="lineage", description="What a dbt model reads and what reads it")
    @app_commands.describe(model="The dbt model")
    @app_commands.autocomplete(model=models)
    async def lineage(interaction: discord.Interaction, model: str) -> None:
        await accept(interaction, command_line("lineage", model))

    @group.command(name="freshness", description="dbt source freshness: what is stale, who owns it")
    async def freshness(interaction: discord.Interaction) -> None:
        await accept(interaction, "freshness")

    @group.command(
        name="costs", description="Warehouse spend against the window before, costly queries"
    )
    @app_commands.describe(window="e.g. 24h or 7d (default 24h)")
    async def costs(interaction: discord.Interaction, window: str | None = None) -> None:
        await accept(interaction, command_line("costs", window))

    @group.command(
        name="schema-review",
        description="A model against the warehouse, or a change: a dbt Cloud run vs production",
    )
    @app_commands.describe(
        model="A dbt model, or a dbt Cloud run id (its change against production), or the base",
        target="With a base: the run id or folder to review against it",
    )
    @app_commands.autocomplete(model=models)
    async def schema_review(
        interaction: discord.Interaction, model: str, target: str | None = None
    ) -> None:
        await accept(interaction, command_line("schema-review", model, target))

    @group.command(
        name="drift", description="Warehouse catalog changes since the last snapshot, unexplained"
    )
    @app_commands.describe(schema="Only this schema (default: every snapshotted schema)")
    async def drift(interaction: discord.Interaction, schema: str | None = None) -> None:
        await accept(interaction, command_line("drift", schema))

    @group.command(name="incidents", description="Open incidents")
    async def incidents(interaction: discord.Interaction) -> None:
        await accept(interaction, "incidents")

    @group.command(name="incident", description="Acknowledge, snooze, resolve or mute an incident")
    @app_commands.describe(
        action="What to do", incident="The incident number", duration="e.g. 4h (snooze, mute)"
    )
    async def incident(
        interaction: discord.Interaction,
        action: Literal["ack", "snooze", "resolve", "mute", "unmute"],
        incident: app_commands.Range[int, 1],
        duration: str | None = None,
    ) -> None:
        await accept(interaction, command_line("incident", action, incident, duration))

    @group.command(name="ask", description="Ask the agent anything about the pipelines")
    @app_commands.describe(question="Your question, in plain language")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await accept(interaction, f"ask {question}")

    digest = app_commands.Group(name="digest", description="Pipeline health digests", parent=group)

    @digest.command(name="now", description="Pipeline health over a window, now")
    @app_commands.describe(window="e.g. 24h or 7d (default 24h)")
    async def digest_now(interaction: discord.Interaction, window: str | None = None) -> None:
        await accept(interaction, command_line("digest", window))

    @digest.command(name="schedule", description="Post the digest in this channel on a schedule")
    @app_commands.describe(
        when="daily, weekdays, or a weekday (monday …)",
        at="Time of day, HH:MM",
        timezone="IANA time zone, e.g. Europe/Berlin (default UTC)",
    )
    async def digest_schedule(
        interaction: discord.Interaction, when: str, at: str, timezone: str | None = None
    ) -> None:
        await accept(interaction, command_line("digest", "schedule", when, at, timezone))

    @digest.command(name="list", description="The digests scheduled here")
    async def digest_list(interaction: discord.Interaction) -> None:
        await accept(interaction, "digest list")

    @digest.command(name="remove", description="Stop a scheduled digest")
    @app_commands.describe(schedule="The schedule's number, as `digest list` shows it")
    async def digest_remove(
        interaction: discord.Interaction, schedule: app_commands.Range[int, 1]
    ) -> None:
        await accept(interaction, command_line("digest", "remove", schedule))

    return group
