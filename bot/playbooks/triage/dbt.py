"""Triage of a dbt run: failing nodes, their owners, downstream impact, stale sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.errors import NotFound
from bot.facts import DbtNode, DbtRun, Lineage
from bot.fanout import Outcome, gather
from bot.messages import Reply, Tone
from bot.owners import unique_owners
from bot.playbooks.dbt_text import command_text, error_text, not_a_build, short_id
from bot.playbooks.replies import missing_argument, not_found_reply
from bot.playbooks.triage.airflow import exposures_of, stale_upstream, stale_upstream_sources
from bot.playbooks.triage.report import TIMEOUT_S, DbtFailure, TriageReport
from bot.ports import Sources
from bot.terminal import strip_escapes


def triage_dbt(
    sources: Sources,
    *,
    run_id: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> TriageReport | Reply:
    dbt = sources.dbt
    assert dbt is not None
    system = dbt.system
    progress(f"{system}: reading run results, lineage and freshness")
    runs = sources.dbt_runs
    if run_id is not None and runs is None:
        return Reply(
            title="dbt Cloud is not configured",
            tone=Tone.WARNING,
            text="Triage of a specific dbt run needs dbt Cloud (PIPEBOT_DBT_CLOUD__*); "
            "`triage dbt` without a run id triages the latest local run.",
        )
    run_call: Callable[[], DbtRun | None] = (
        (lambda: runs.cloud_run(int(run_id)))
        if run_id is not None and runs is not None
        else dbt.last_run
    )
    if run_id is not None and not run_id.isdigit():
        return missing_argument("triage dbt <run_id>", "a numeric dbt Cloud run id")
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "run": (system, run_call),
        "freshness": (system, dbt.freshness),
        "nodes": (system, dbt.nodes),
    }
    if run_id is not None and runs is not None:
        calls["previous"] = (runs.system, lambda: runs.previous_run(int(run_id)))
    out: dict[str, Outcome[Any]] = gather(calls, timeout=TIMEOUT_S)
    if not out["run"].ok:
        return not_found_reply(out["run"], what=f"dbt run {run_id or '(latest)'}")
    dbt_run: DbtRun | None = out["run"].value
    if dbt_run is None:
        return Reply(
            title="No dbt run to triage", tone=Tone.INFO, text="dbt has no run results yet."
        )
    if not dbt_run.executed:
        # `dbt docs generate` after a build: its "success" per compiled node is no verdict.
        return Reply(
            title="No dbt build to triage",
            tone=Tone.WARNING,
            text=not_a_build(dbt_run),
            sources=(f"{system}: run results ({command_text(dbt_run.command)})",),
        )
    bad = [r for r in dbt_run.results if r.status in ("error", "fail", "runtime error")]
    lineage_calls: dict[str, tuple[str, Callable[[], Any]]] = {
        r.unique_id: (system, _bind_lineage(dbt, r.unique_id)) for r in bad[:10]
    }
    lineages = gather(lineage_calls, timeout=TIMEOUT_S) if lineage_calls else {}
    nodes: dict[str, DbtNode] = {n.unique_id: n for n in (out["nodes"].value or [])}
    # A failing test's impact is its model's: what reads that model, which dashboards. A unit
    # test's model is not even built (dbt build skips it), so the model is affected too.
    checked = {
        uid: _tested(o.value)
        for uid, o in lineages.items()
        if uid.startswith(_TESTS) and o.ok and o.value is not None
    }
    tested = {t for found in checked.values() for t in found} - set(lineages)
    parents = (
        gather(
            {uid: (system, _bind_lineage(dbt, uid)) for uid in sorted(tested)[:10]},
            timeout=TIMEOUT_S,
        )
        if tested
        else {}
    )
    lins: list[Lineage] = [o.value for o in parents.values() if o.ok and o.value is not None]
    by_uid = {lin.node.unique_id: lin for lin in lins}
    by_uid.update((uid, o.value) for uid, o in lineages.items() if o.ok and o.value is not None)
    not_built: list[str] = []
    failures = []
    for result in bad:
        lin_out = lineages.get(result.unique_id)
        lin: Lineage | None = lin_out.value if lin_out is not None and lin_out.ok else None
        if lin is not None:
            lins.append(lin)
        node = nodes.get(result.unique_id)
        models = [by_uid[t] for t in checked.get(result.unique_id, ()) if t in by_uid]
        unit = result.unique_id.startswith("unit_test.")
        if unit:
            not_built += [m.node.name for m in models]
        failures.append(
            DbtFailure(
                unique_id=result.unique_id,
                name=lin.node.name if lin else node.name if node else short_id(result.unique_id),
                resource_type=result.unique_id.split(".")[0],
                status=result.status,
                message=error_text(result.message),
                owners=(lin.node.owners if lin else node.owners if node else ()),
                downstream=_affected(lin, models, unit=unit),
                tested=tuple(m.node.name for m in models),
                diff=unit_test_diff(result.message) if unit else (),
            )
        )
    exposures = exposures_of(lins)
    # One person, written one way on every line (bot.owners): "dana@example.com" is @dana
    # wherever another line names @dana.
    stale = stale_upstream_sources(out["freshness"], lins)
    everyone = [
        *(o for f in failures for o in f.owners),
        *(o for e in exposures for o in e.owners),
        *(o for f in stale for o in f.owners),
    ]
    failures = [replace(f, owners=unique_owners(f.owners, known=everyone)) for f in failures]
    exposures = tuple(replace(e, owners=unique_owners(e.owners, known=everyone)) for e in exposures)
    changes = _diff(dbt_run, out.get("previous"), nodes)
    # A result the manifest does not describe (an older manifest, a hook) simply has no
    # lineage: not a source failure, and the lookup's wording is not for the reader.
    unavailable = [
        f"{o.system} {name}: {o.error}"
        for name, o in {**out, **lineages, **parents}.items()
        if not o.ok and not (name not in out and isinstance(o.exc, NotFound))
    ]
    return TriageReport(
        system="dbt",
        subject=dbt_run.job_name or f"dbt {dbt_run.command}",
        run_id=str(dbt_run.cloud_run_id or dbt_run.invocation_id),
        run_state=dbt_run.status or ("error" if bad else "success"),
        url=dbt_run.url,
        started_at=None,
        ended_at=dbt_run.generated_at,
        duration_s=dbt_run.elapsed_s,
        dbt_failures=tuple(failures),
        changes=changes,
        dbt_skipped=dbt_run.count("skipped"),
        dbt_command=dbt_run.command,
        dbt_superseded_by=dbt_run.superseded_by,
        dbt_superseded_at=dbt_run.superseded_at,
        dbt_kept_at=dbt_run.kept_at,
        owners=unique_owners(
            [o for f in failures for o in f.owners] + [o for e in exposures for o in e.owners]
        ),
        dbt_models=tuple(f.name for f in failures),
        impact_models=tuple(
            sorted({*not_built, *(n.name for lin in lins for n in lin.downstream)})
        ),
        impact_semantic=tuple(
            dict.fromkeys(
                f"{n.resource_type.replace('_', ' ')} `{n.name}`"
                for lin in lins
                for n in lin.semantic
            )
        ),
        exposures=exposures,
        stale_sources=stale_upstream(out["freshness"], lins, sources.now(), known=everyone),
        unavailable=tuple(unavailable),
        sources=(f"{system}: run results, manifest lineage and exposures, source freshness",),
        checked_at=sources.now(),
    )


def _bind_lineage(dbt: Any, unique_id: str) -> Callable[[], Any]:
    return lambda: dbt.lineage(unique_id)


_TESTS = ("test.", "unit_test.")


def _tested(lineage: Lineage) -> tuple[str, ...]:
    """What a test checks: its model, or for a singular test every node it reads."""
    if lineage.node.tested:
        return (lineage.node.tested,)
    return tuple(p.unique_id for p in lineage.parents)


def _affected(lin: Lineage | None, models: list[Lineage], *, unit: bool) -> int:
    if models:
        return sum(len(m.downstream) + unit for m in models)
    return len(lin.downstream) if lin is not None else 0


DIFF_LINES = 20


def unit_test_diff(message: str) -> tuple[str, ...]:
    """The rows of a failing unit test's "actual differs from expected" table, without
    terminal colours: a header row (``@@``), then changed rows (``→``, cells read
    ``expected→actual``), rows only expected (``---``) and rows only in the actual output
    (``+++``). Empty when the message holds no such table (an error, not a failure)."""
    # dbt colours the table for a terminal; the connector strips that already, but a message
    # from elsewhere (a dbt Cloud log) may still carry it.
    lines = [line.rstrip() for line in strip_escapes(message or "").splitlines()]
    start = next((i for i, line in enumerate(lines) if "differs from" in line), None)
    if start is None:
        return ()
    rows = [line for line in lines[start + 1 :] if line.strip()]
    if len(rows) > DIFF_LINES:
        rows = [*rows[: DIFF_LINES - 1], f"… {len(rows) - DIFF_LINES + 1} more rows"]
    return tuple(rows)


def _diff(
    current: DbtRun, previous: Outcome[Any] | None, nodes: dict[str, DbtNode]
) -> tuple[str, ...]:
    """What broke and what recovered since the job's previous run."""
    if previous is None or not previous.ok or previous.value is None:
        return ()
    before: DbtRun = previous.value
    bad = {"error", "fail", "runtime error"}
    was = {r.unique_id: r.status for r in before.results}
    now = {r.unique_id: r.status for r in current.results}

    def name(uid: str) -> str:
        node = nodes.get(uid)
        return f"`{node.name if node else short_id(uid)}`"

    broke = [uid for uid, status in now.items() if status in bad and was.get(uid) not in bad]
    fixed = [uid for uid, status in was.items() if status in bad and now.get(uid) not in bad]
    label = f"run {before.cloud_run_id or before.invocation_id}"
    found = []
    if broke:
        found.append(f"newly failing since {label}: " + ", ".join(name(u) for u in broke[:10]))
    if fixed:
        found.append(f"fixed since {label}: " + ", ".join(name(u) for u in fixed[:10]))
    if not found:
        found.append(f"the same nodes failed in the previous {label}")
    return tuple(found)
