"""Playbooks: deterministic answers built from connector facts, one module per command.

`default_commands()` is the command table every channel shares.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.agent import Agent
from bot.commands import Command, Commands
from bot.owners import OwnerDirectory
from bot.playbooks import (
    change_review,
    costs,
    dag,
    digest,
    drift,
    freshness,
    help,
    incidents,
    lineage,
    runs,
    schema_review,
    status,
    triage,
)
from bot.store.digests import Digests
from bot.store.drift import DriftSnapshots
from bot.store.incidents import Incidents


def _any(_args: Sequence[str]) -> tuple[str, ...]:
    return ("any",)


def _airflow(_args: Sequence[str]) -> tuple[str, ...]:
    return ("airflow",)


def _dbt(_args: Sequence[str]) -> tuple[str, ...]:
    return ("dbt",)


def default_commands(
    owners: OwnerDirectory | None = None,
    incident_store: Incidents | None = None,
    agent: Agent | None = None,
    digest_store: Digests | None = None,
    drift_store: DriftSnapshots | None = None,
) -> Commands:
    """The command table. Incident commands need the store's incident records; with an agent,
    triage adds a root-cause hypothesis."""
    directory = owners or OwnerDirectory()
    table: list[Command] = [
        Command(
            name="help", usage="help", summary="what I can do", run=lambda r: help.run(r, commands)
        ),
        Command(
            name="status",
            usage="status",
            summary="Airflow health, failed runs (24 h), last dbt run, stale sources",
            run=status.run,
            needs=_any,
        ),
        Command(
            name="dag",
            usage="dag <dag_id>",
            summary="a DAG, its recent runs and owners",
            run=dag.run,
            needs=_airflow,
        ),
        Command(
            name="runs",
            usage="runs [dag_id]",
            summary="recent DAG runs, all DAGs or one",
            run=runs.run,
            needs=_airflow,
        ),
        Command(
            name="triage",
            usage="triage <dag_id> [run_id] | triage dbt [run_id]",
            summary="what broke, why, what is affected, who owns it",
            run=lambda r: triage.run(r, directory, agent),
            needs=lambda args: ("dbt",) if args and args[0].lower() == "dbt" else ("airflow",),
        ),
        Command(
            name="lineage",
            usage="lineage <model>",
            summary="what a dbt model reads and what reads it, down to dashboards",
            run=lineage.run,
            needs=_dbt,
        ),
        Command(
            name="freshness",
            usage="freshness",
            summary="dbt source freshness: what is stale and who owns it",
            run=freshness.run,
            needs=_dbt,
        ),
        Command(
            name="costs",
            usage=costs.USAGE,
            summary="warehouse spend against the previous window, the warehouses that moved, "
            "the slowest, costliest and failing queries",
            run=costs.run,
            needs=lambda _args: ("warehouse", "usage"),
        ),
        Command(
            name="digest",
            usage=digest.USAGE,
            summary="pipeline health over a window: failing and recovered DAGs, dbt, stale "
            "sources, incidents; `digest schedule daily 09:00 Europe/Berlin` posts it here",
            run=lambda r: digest.run(r, incident_store, agent, digest_store),
            subgroups={"schedule": "digest", "remove": "digest"},
            needs=lambda args: (
                () if args and args[0] in ("schedule", "list", "remove") else ("any",)
            ),
        ),
        Command(
            name="schema-review",
            usage=schema_review.USAGE,
            summary="a model's columns in the warehouse against what dbt declares; or a change "
            "(a dbt Cloud CI run against production, two runs or folders): what it breaks, "
            "column by column, and whom to tell",
            run=lambda r: schema_review.run(r, agent, directory),
            needs=lambda args: () if change_review.is_change(args) else ("dbt",),
        ),
        Command(
            name="drift",
            usage=drift.USAGE,
            summary="what changed in the warehouse catalog since the last daily snapshot, and "
            "what no dbt run explains",
            run=lambda r: drift.run(r, drift_store),
            needs=lambda _args: ("warehouse",),
        ),
    ]
    if incident_store is not None:
        store = incident_store
        table += [
            Command(
                name="incidents",
                usage="incidents",
                summary="open incidents, their owners and who is on them",
                run=lambda r: incidents.list_open(r, store),
            ),
            Command(
                name="incident",
                usage=incidents.USAGE,
                summary="acknowledge, snooze, resolve or mute an incident",
                run=lambda r: incidents.act(r, store),
                group="incidents",
            ),
        ]
    commands = Commands(table)
    return commands
