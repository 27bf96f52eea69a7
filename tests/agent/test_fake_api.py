"""The fake Messages API itself, through the real SDK: scripts, checks, cache accounting."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.fakes.anthropic_api import (
    FakeAnthropic,
    Recorded,
    message,
    text,
    tool_use,
)

SYSTEM: list[Any] = [
    {"type": "text", "text": "You are terse. " * 400, "cache_control": {"type": "ephemeral"}}
]


def client(fake: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=fake.url, max_retries=0)


def ask(fake: FakeAnthropic, question: str = "hi", **extra: Any) -> Any:
    params: dict[str, Any] = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": question}],
    }
    params.update(extra)
    return client(fake).messages.create(**params)


def test_scripted_pinned_and_computed_turns(api: FakeAnthropic) -> None:
    def echo(request: Recorded) -> dict[str, Any]:
        assert request.body is not None
        return message(text("you said " + request.body["messages"][0]["content"]))

    api.script(message(text("first")))
    api.on(2, message(text("second")))
    api.otherwise(echo)
    assert ask(api).content[0].text == "first"
    assert ask(api).content[0].text == "second"
    assert ask(api, "ping").content[0].text == "you said ping"
    assert [r.index for r in api.messages_requests] == [1, 2, 3]
    assert api.messages_requests[0].headers["authorization"] == "Bearer sk-ant-test"


def test_identical_prefix_is_read_from_the_cache(api: FakeAnthropic) -> None:
    api.script(message(text("a")), message(text("b")), message(text("c")))
    first = ask(api, "one").usage
    second = ask(api, "two").usage
    third = ask(api, "three", tool_choice={"type": "none"}).usage
    static = FakeAnthropic.static_prefix_tokens(api.bodies[0])
    assert static > 1024
    assert (first.cache_read_input_tokens, first.cache_creation_input_tokens) == (0, static)
    assert second.cache_read_input_tokens == static
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens > 0  # the question after the last breakpoint
    assert third.cache_read_input_tokens == static  # tool_choice only touches messages


def test_a_short_prefix_is_not_cached() -> None:
    with FakeAnthropic(min_cacheable_tokens=100_000) as fake:
        fake.script(message(text("a")), message(text("b")))
        ask(fake)
        usage = ask(fake).usage
        fake.assert_clean()
    assert usage.cache_read_input_tokens == usage.cache_creation_input_tokens == 0


def test_count_tokens(api: FakeAnthropic) -> None:
    counted = client(api).messages.count_tokens(
        model="claude-sonnet-5-5", system=SYSTEM, messages=[{"role": "user", "content": "hi"}]
    )
    assert counted.input_tokens > FakeAnthropic.static_prefix_tokens(api.requests[0].body or {})


def test_sampling_parameters_are_rejected_loudly() -> None:
    with FakeAnthropic() as fake:
        with pytest.raises(anthropic.BadRequestError, match="temperature is not supported"):
            ask(fake, extra_body={"temperature": 0.2})
        with pytest.raises(AssertionError, match="temperature"):
            fake.assert_clean()


def test_unanswered_tool_use_is_rejected() -> None:
    call = tool_use("t", {})
    with FakeAnthropic() as fake:
        with pytest.raises(anthropic.BadRequestError, match="without tool_result"):
            ask(
                fake,
                messages=[
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": [call]},
                    {"role": "user", "content": "no results here"},
                ],
            )
        assert fake.failures


def test_an_unscripted_request_fails_the_test() -> None:
    with FakeAnthropic() as fake:
        with pytest.raises(anthropic.InternalServerError):
            ask(fake)
        assert len(fake.messages_requests) == 1  # x-should-retry: false stops the SDK
        with pytest.raises(AssertionError, match="no scripted turn for request 1"):
            fake.assert_clean()


def test_unused_turns_fail_the_test() -> None:
    with FakeAnthropic() as fake:
        fake.script(message(text("never asked")))
        with pytest.raises(AssertionError, match="never requested"):
            fake.assert_clean()
