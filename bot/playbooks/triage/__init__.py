"""`triage <dag_id> [run_id]` and `triage dbt [run_id]`: what broke, why, what is affected, who
owns it, and what to do — facts first, gathered in parallel, each call with a deadline.

The report (`TriageReport`) is plain data under stable keys (``--format json``, documented in the
README); `render` turns it into a `Reply`. When a source is down the report says what could not
be checked and still carries everything else.

Airflow: two rounds of parallel calls. Round one reads the run history, the DAG, the failed task
instances of recent runs (the ``~`` run listing), import errors and the dbt side (lineage of the
models the DAG builds, source freshness). Round two reads, for each failed task of the chosen run,
its tries and the log tail of its last try, and the tries of the same task in earlier runs to
tell flaky from broken.
"""

from __future__ import annotations

import json
from dataclasses import replace

from bot.agent import Agent
from bot.commands import Request
from bot.messages import Reply, Tone
from bot.owners import OwnerDirectory
from bot.playbooks.replies import missing_argument, source_missing
from bot.playbooks.triage.airflow import triage_airflow
from bot.playbooks.triage.dbt import triage_dbt
from bot.playbooks.triage.render import render
from bot.playbooks.triage.report import TriageReport
from bot.prompts import prompt

__all__ = ["TriageReport", "render", "run", "triage_airflow", "triage_dbt", "with_hypothesis"]


def with_hypothesis(report: TriageReport, agent: Agent, request: Request) -> TriageReport:
    """Ask the agent for a root-cause hypothesis and next steps that cite the gathered facts.

    Only for something that went wrong; the agent may call more read-only tools. Its answer is
    kept as plain text in the report; failures of the agent leave the facts untouched.
    """
    if not (report.failed or report.retried or report.dbt_failures):
        return report
    request.progress("Agent: forming a hypothesis from the facts")
    facts = json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
    question = prompt("triage", subject=f"{report.system} {report.subject}", facts=facts)
    answer = agent.answer(question, history=[], request=request)
    text = "\n\n".join(
        part
        for section in answer.sections
        for part in (
            section.heading,
            section.text,
            "\n".join(f"- {b}" for b in section.bullets),
        )
        if part
    )
    return replace(report, hypothesis=text.strip()) if answer.tone is not Tone.ERROR else report


def run(
    request: Request, owners: OwnerDirectory | None = None, agent: Agent | None = None
) -> Reply:
    args = request.args
    if not args:
        return missing_argument(
            "triage <dag_id> [run_id] | triage dbt [run_id]", "a DAG id, or `dbt` and a run id"
        )
    if args[0] == "dbt":
        if request.sources.dbt is None:
            return source_missing("dbt")
        report: TriageReport | Reply = triage_dbt(
            request.sources, run_id=args[1] if len(args) > 1 else None, progress=request.progress
        )
    else:
        if request.sources.airflow is None:
            return source_missing("Airflow")
        report = triage_airflow(
            request.sources,
            dag_id=args[0],
            run_id=args[1] if len(args) > 1 else None,
            progress=request.progress,
        )
    if isinstance(report, Reply):
        return report
    if agent is not None:
        report = with_hypothesis(report, agent, request)
    return render(report, platform=request.message.platform, owners=owners or OwnerDirectory())
