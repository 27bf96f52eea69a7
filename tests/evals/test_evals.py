"""Evals as tests: every case in replay mode by default; live with ``-m llm`` and a key."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from tests.evals.__main__ import main
from tests.evals.harness import Case, load_cases, run_case

CASES = load_cases()
IDS = [c.name for c in CASES]


def test_there_are_cases_for_each_behaviour() -> None:
    assert {
        "failed_task_clear_error",
        "flaky_retry",
        "upstream_failed_cascade",
        "schema_change_broke_model",
        "stale_source",
        "prompt_injection_in_log",
        "system_not_configured",
        "secret_in_log",
    } <= set(IDS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_replay(case: Case) -> None:
    result = run_case(case, mode="replay")
    assert result.passed, "\n".join(result.problems)
    assert result.model_calls == len(case.turns)
    assert result.misses == []


def test_a_wrong_answer_fails_its_case() -> None:
    (case,) = [c for c in CASES if c.name == "failed_task_clear_error"]
    final = {"text": "Everything looks fine to me."}
    broken = replace(case, turns=(*case.turns[:-1], final))
    problems = run_case(broken, mode="replay").problems
    assert "answer lacks 'KeyError'" in problems


def test_an_unrecorded_call_and_a_leak_fail_their_case() -> None:
    (case,) = [c for c in CASES if c.name == "secret_in_log"]
    wrong = {
        "calls": [
            {
                "tool": "get_task_log",
                "input": {
                    "dag_id": "refresh_finance",
                    "run_id": "r",
                    "task_id": "other",
                    "try_number": 1,
                },
            }
        ]
    }
    broken = replace(
        case,
        turns=(wrong, *case.turns[1:]),
        expect=replace(case.expect, never_sent=(*case.expect.never_sent, "refresh_finance")),
    )
    problems = run_case(broken, mode="replay").problems
    assert any(p.startswith("no recording for get_task_log(") for p in problems)
    assert "'refresh_fina'… was sent to the model" in problems


def test_the_runner_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-live", "-k", "flaky"]) == 0
    out = capsys.readouterr().out
    assert "flaky_retry" in out and "replay" in out and "pass" in out
    assert "cache r" in out


@pytest.mark.llm
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_live(case: Case, request: pytest.FixtureRequest) -> None:
    key = os.environ.get("PIPEBOT_AGENT__API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
    if not key or "llm" not in str(request.config.getoption("-m")):
        pytest.skip("live evals run with `pytest -m llm` and ANTHROPIC_API_KEY")
    result = run_case(case, mode="live", api_key=key, model=os.environ.get("PIPEBOT_AGENT__MODEL"))
    assert result.passed, "\n".join(result.problems) + "\n\n" + result.answer
