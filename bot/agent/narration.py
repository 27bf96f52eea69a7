"""What the agent tells people while and after it works, in one place.

Progress lines name the system and say in plain words what is being read, derived from the tool
name and its parameters::

    describe_call("get_task_log", {"task_id": "transform", "try_number": 2}, system="Airflow")
    # → "Airflow: reading log of transform, try 2"

A tool without a row in `_CALLS` still gets a readable line from its name ("get_model" →
"reading model …"). The phrases below are the agent's limits and failures as people read them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["describe_call"]

# Templates: ``{param}`` is replaced by the parameter's value; a ``[...]`` part is kept only
# when every parameter inside it was given. List values are joined with "/".
_CALLS: dict[str, str] = {
    # Airflow
    "list_dags": "listing DAGs[ matching “{name_contains}”]",
    "get_dag": "reading DAG {dag_id}",
    "list_dag_runs": "listing[ {states}] runs[ of {dag_id}][ from the last {hours_back} h]",
    "get_task_instances": "reading[ {states}] tasks of {dag_id}[ run {run_id}]",
    "get_task_tries": "reading the tries of {task_id}[ in {dag_id}]",
    "get_task_log": "reading log of {task_id}[, try {try_number}]",
    "list_import_errors": "checking DAG import errors",
    "airflow_health": "checking scheduler and metadatabase health",
    # dbt
    "dbt_find_node": "reading {name}",
    "dbt_lineage": "tracing[ {direction}] lineage of {name}",
    "dbt_last_run": "reading the last dbt run[ ({status})]",
    "dbt_source_freshness": "checking source freshness",
    "dbt_tests": "reading the tests on {name}",
    "dbt_cloud_runs": "listing dbt Cloud runs[ of job {job_id}]",
    "dbt_cloud_run": "reading dbt Cloud run {run_id}",
    # warehouse
    "list_schemas": "listing schemas",
    "list_tables": "listing tables in {schema}[ matching “{pattern}”]",
    "describe_table": "describing {schema}.{table}",
}

_VERBS = {
    "get": "reading",
    "list": "listing",
    "describe": "describing",
    "check": "checking",
    "search": "searching",
    "find": "finding",
    "compare": "comparing",
    "trace": "tracing",
}

_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_FIELD = re.compile(r"\{(\w+)\}")


def describe_call(name: str, params: Mapping[str, Any], *, system: str) -> str:
    """One progress line for a tool call, e.g. "dbt: tracing lineage of fct_orders"."""
    template = _CALLS.get(name)
    text = _fill(template, params) if template else _from_name(name, params)
    return f"{system}: {text}" if system else text


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(str(v) for v in value)
    return str(value)


def _given(params: Mapping[str, Any], key: str) -> bool:
    return params.get(key) not in (None, "", [], ())


def _fill(template: str, params: Mapping[str, Any]) -> str:
    def optional(match: re.Match[str]) -> str:
        part = match.group(1)
        keys = _FIELD.findall(part)
        return part if all(_given(params, k) for k in keys) else ""

    text = _OPTIONAL.sub(optional, template)
    return _FIELD.sub(lambda m: _value(params.get(m.group(1), "?")), text)


def _from_name(name: str, params: Mapping[str, Any]) -> str:
    verb, _, rest = name.partition("_")
    words = rest.replace("_", " ") if verb in _VERBS else name.replace("_", " ")
    lead = f"{_VERBS[verb]} {words}" if verb in _VERBS else f"running {words}"
    shown = [_value(v) for v in params.values() if isinstance(v, (str, int)) and v != ""][:3]
    return f"{lead} {' '.join(shown)}".strip()


STARTING = "Thinking about your question…"
BUSY = "The model is busy right now — try again in a minute."
UNAVAILABLE = (
    "The agent can't use the model right now. The operator can find the details in the logs "
    "(reference {ref})."
)
UNREACHABLE = "The model could not be reached in time — try again in a minute."
REFUSED = "I can't help with that request."
NO_ANSWER = "The model returned no answer."
BUDGET_CONVERSATION = (
    "This thread has used its token budget ({used:,} of {budget:,} tokens). Start a new thread, "
    "or ask the operator to raise PIPEBOT_AGENT__CONVERSATION_TOKEN_BUDGET."
)
BUDGET_DAY = (
    "The daily token budget is used up ({used:,} of {budget:,} tokens); it resets at 00:00 UTC. "
    "Commands still work — try `help`."
)

NOTE_STEPS = "I stopped after {steps} model steps (the limit), so this answer may be incomplete."
NOTE_TOOL_CALLS = "I reached the limit of {calls} tool calls, so some checks were not run."
NOTE_TIMEOUT = "I ran out of time ({seconds:.0f} s), so this answer may be incomplete."
NOTE_BUDGET = "The token budget ran out while I was working, so this answer is incomplete."
NOTE_OUTPUT_CUT = "The answer was cut at the output limit."
NOTE_CONTEXT = "The conversation grew too large for the model; earlier tool results were dropped."
NOTE_COULD_NOT_CHECK = "Could not check: {what}"
NOTE_OUTPUT_TRUNCATED = "Some tool outputs were too long and were shortened before I read them."
EMPTY_QUESTION = (
    "Ask me about your pipelines, e.g. `ask why did orders_daily fail last night?` "
    "or `ask which models read raw.orders?`"
)
