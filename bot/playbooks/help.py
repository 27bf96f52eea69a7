"""`help`: what pipebot can do here."""

from __future__ import annotations

from bot.commands import Commands, Request
from bot.messages import Reply, Section


def run(request: Request, commands: Commands) -> Reply:
    configured = request.sources.configured()
    where = ", ".join(configured) if configured else "no sources yet"
    return Reply(
        title="pipebot — your read-only data-engineering colleague",
        text=(
            "I look things up in Airflow, dbt and the warehouse and tell you what broke, why, "
            "what is affected and who owns it. I never change anything."
        ),
        sections=(
            Section(
                heading="Commands",
                bullets=tuple(f"`{c.usage}` — {c.summary}" for c in commands),
            ),
            Section(
                heading="Questions",
                text=(
                    "Anything else is a question for the agent, e.g. "
                    "`why did orders_daily fail?` or `ask what reads fct_orders.amount?`"
                ),
            ),
        ),
        notes=(
            f"Connected: {where}."
            + (f" ({request.sources.label})" if request.sources.label else ""),
        ),
    )
