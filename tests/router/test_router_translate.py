"""Translation between the OpenAI and Anthropic shapes, the canonical hash and the stream writers."""

from __future__ import annotations

import json

import pytest

from router.completion import Completion, Shape, Usage
from router.hashing import request_hash
from router.translate import (
    AnthropicStream,
    OpenAIStream,
    anthropic_to_openai_request,
    completion_from_anthropic,
    completion_from_openai,
    openai_to_anthropic_request,
    render,
)
from router.validate import anthropic_request, openai_request

pytestmark = pytest.mark.unit


def test_anthropic_request_becomes_canonical_openai_and_back() -> None:
    body = {"model": "m", "max_tokens": 10, "system": [{"type": "text", "text": "sys"}], "temperature": 0.2,
            "stop_sequences": ["X"], "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                                  {"role": "assistant", "content": "yo"}]}  # fmt: skip
    canonical = anthropic_to_openai_request(body)
    assert canonical == {"model": "m", "max_tokens": 10, "temperature": 0.2, "stop": ["X"], "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"}]}  # fmt: skip
    back = openai_to_anthropic_request(canonical, "claude-x")
    assert back == {"model": "claude-x", "max_tokens": 10, "system": "sys", "temperature": 0.2,
                    "stop_sequences": ["X"], "messages": [{"role": "user", "content": "hi"},
                                                          {"role": "assistant", "content": "yo"}]}  # fmt: skip


def test_the_same_question_in_both_shapes_hashes_alike() -> None:
    a = openai_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]})
    b = anthropic_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]})
    c = openai_request({"model": "n", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]})
    assert request_hash(a) == request_hash(b) != request_hash(c)


def test_usage_and_finish_reasons_map_both_ways() -> None:
    openai = completion_from_openai({"id": "x", "model": "m", "choices": [{"message": {"content": "t"},
                                     "finish_reason": "length"}], "usage": {"prompt_tokens": 9,
                                     "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}},
                                    None, now=5)  # fmt: skip
    assert (openai.finish_reason, openai.usage) == ("length", Usage(input_tokens=9, cached_input_tokens=4,
                                                                    output_tokens=2))  # fmt: skip
    msg = {"type": "message", "id": "msg_1", "model": "m", "content": [{"type": "text", "text": "t"}],
           "stop_reason": "max_tokens", "usage": {"input_tokens": 5, "cache_read_input_tokens": 4,
                                                  "output_tokens": 2}}  # fmt: skip
    anthropic = completion_from_anthropic(msg, None, now=5)
    assert anthropic.finish_reason == "length"
    assert anthropic.usage == Usage(input_tokens=9, cached_input_tokens=4, output_tokens=2)
    as_anthropic = json.loads(render(openai, Shape.ANTHROPIC))
    assert as_anthropic["stop_reason"] == "max_tokens"
    assert as_anthropic["usage"] == {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 4,
                                     "cache_creation_input_tokens": 0}  # fmt: skip


def test_render_passes_the_providers_own_bytes_through_for_its_own_shape() -> None:
    raw = b'{"id":"chatcmpl-1","choices":[],"extra_field":1}'
    c = Completion(id="1", model="m", text="t", finish_reason="stop", usage=Usage(), created=1, raw=raw,
                   raw_shape=Shape.OPENAI)  # fmt: skip
    assert render(c, Shape.OPENAI) is raw
    assert json.loads(render(c, Shape.ANTHROPIC))["content"][0]["text"] == "t"


def _events(stream: bytes) -> list[tuple[str, dict[str, object]]]:
    out = []
    for block in stream.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines.get("event", ""), json.loads(lines["data"]) if lines["data"] != "[DONE]" else {}))
    return out


def test_anthropic_stream_sequence() -> None:
    c = Completion(id="abc", model="m", text="hello", finish_reason="stop", created=1,
                   usage=Usage(input_tokens=4, output_tokens=2))  # fmt: skip
    writer = AnthropicStream(id=c.id, model="m", input_tokens=4)
    events = _events(writer.delta("hel") + writer.delta("lo") + writer.finish(c))
    assert [e for e, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert events[0][1]["message"]["id"] == "msg_abc"  # type: ignore[index]
    assert events[5][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_openai_stream_ends_with_usage_then_done() -> None:
    c = Completion(id="chatcmpl-z", model="m", text="", finish_reason="stop", created=1,
                   usage=Usage(input_tokens=4, output_tokens=0))  # fmt: skip
    events = _events(OpenAIStream(id=c.id, model="m", created=1).finish(c))
    assert events[0][1]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
    assert events[1][1]["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    assert events[2][1]["choices"] == [] and events[2][1]["usage"]["prompt_tokens"] == 4  # type: ignore[index]
    assert events[3] == ("", {})
