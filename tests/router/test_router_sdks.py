"""The official openai and anthropic SDKs, unchanged, against the router (streaming included)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from router_fakes import COMPLETION_TOKENS, PROMPT_TOKENS, FakeProvider
from router_support import Router

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]

USER = [{"role": "user", "content": "tell me"}]


@pytest.fixture
async def oai(router: Router) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key="unused", base_url=router.api, max_retries=0)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def claude(router: Router) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(api_key="unused", base_url=router.url, max_retries=0)
    try:
        yield client
    finally:
        await client.close()


@pytest.mark.parametrize("model", ["gpt-test", "claude-test"])
async def test_openai_sdk_completion(oai: openai.AsyncOpenAI, fake: FakeProvider, model: str) -> None:
    raw = await oai.chat.completions.with_raw_response.create(model=model, messages=USER, temperature=0)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: tell me"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == PROMPT_TOKENS
    assert raw.headers["x-agentflow-cache"] == "miss"
    assert fake.count("/v1/messages" if model.startswith("claude") else "/chat/completions") == 1


@pytest.mark.parametrize("model", ["gpt-test", "claude-test"])
async def test_openai_sdk_stream_miss_then_hit(oai: openai.AsyncOpenAI, fake: FakeProvider, model: str) -> None:
    for expected in ("miss", "hit"):
        response = await oai.chat.completions.with_raw_response.create(
            model=model,
            messages=USER,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
        assert response.headers["x-agentflow-cache"] == expected
        stream = response.parse()
        pieces, usage, finish = [], None, None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
        assert "".join(pieces) == "echo: tell me"
        assert finish == "stop"
        assert usage is not None
        assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert len(fake.calls) == 1


async def test_openai_sdk_maps_router_errors_to_its_exceptions(oai: openai.AsyncOpenAI, fake: FakeProvider) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        await oai.chat.completions.create(model="nope", messages=USER)  # type: ignore[arg-type]
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await oai.chat.completions.create(model="gpt-test", messages=USER, temperature=7)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"
    assert fake.calls == []


async def test_openai_sdk_lists_models(oai: openai.AsyncOpenAI, start_router: object) -> None:
    page = await oai.models.list()
    assert page.data == []  # pattern-served models are not enumerable; configured ones are (see test_config)


@pytest.mark.parametrize("model", ["claude-test", "gpt-test"])
async def test_anthropic_sdk_message(claude: anthropic.AsyncAnthropic, fake: FakeProvider, model: str) -> None:
    raw = await claude.messages.with_raw_response.create(
        model=model,
        max_tokens=64,
        messages=USER,
        extra_body={"temperature": 0},  # type: ignore[arg-type]
    )
    msg = await raw.parse()
    assert msg.content[0].type == "text" and msg.content[0].text == "echo: tell me"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == COMPLETION_TOKENS
    assert raw.headers["x-agentflow-cache"] == "miss"


@pytest.mark.parametrize("model", ["claude-test", "gpt-test"])
async def test_anthropic_sdk_stream_miss_then_hit(
    claude: anthropic.AsyncAnthropic, fake: FakeProvider, model: str
) -> None:
    for _ in ("miss", "hit"):
        async with claude.messages.stream(
            model=model,
            max_tokens=64,
            messages=USER,
            extra_body={"temperature": 0},  # type: ignore[arg-type]
        ) as stream:
            texts = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
        assert "".join(texts) == "echo: tell me"
        assert final.content[0].type == "text" and final.content[0].text == "echo: tell me"
        assert final.stop_reason == "end_turn"
        assert final.usage.output_tokens == COMPLETION_TOKENS
    assert len(fake.calls) == 1


async def test_anthropic_sdk_sees_router_errors_as_its_exceptions(
    claude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    with pytest.raises(anthropic.NotFoundError):
        await claude.messages.create(model="nope", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.create(model="claude-test", max_tokens=5, messages=USER, extra_body={"temperature": 3})  # type: ignore[arg-type]
    assert fake.calls == []
