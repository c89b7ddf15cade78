"""The in-process MLX engine honours structured output, tools, logprobs,
penalties, logit_bias, seed and n (issue 19), on the tiny random-weight
models with the official `openai` SDK.

A random-weight model follows no instruction: whatever is valid below is
valid because constrained decoding (llguidance's token mask from the schema)
left it no other choice. Every answer is also checked against OpenAI's
schemas (tests/conformance.py, through `client()`'s hook and conftest's helpers).
"""

import importlib.util
import json
import os
from typing import Literal

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from conformance import httpx_hook
from conftest import ROOT, model_env, post_json, running_service

# Bounded strings and numbers: a random model closes a string only by
# chance, so an unbounded one may run past max_tokens (then the answer is
# cut, finish_reason "length", as anywhere). Bounds are part of the schema
# the grammar enforces.
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city", "parameters": WEATHER}},
    {"type": "function", "function": {
        "name": "get_time", "description": "The time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}},
                       "required": ["city"], "additionalProperties": False}}},
]
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


class Person(BaseModel):
    name: str = Field(max_length=12)
    age: int = Field(ge=0, le=120)
    role: Literal["admin", "user"]


def client(base):
    http = openai.DefaultHttpxClient(event_hooks={"response": [httpx_hook]})
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, http_client=http)


@pytest.fixture(scope="module")
def base():
    """qwen (tiny Qwen3, in-process mlx, its template takes tools, thinking
    on by configuration) and gemma (tiny Gemma 3, in-process: no tools)."""
    env = {
        **model_env("qwen", "qwen3", "large", max_new_tokens=400, enable_thinking="true"),
        **model_env("gemma", "gemma3_text", "small", max_new_tokens=200),
    }
    with running_service(env) as url:
        yield url


# --- response formats -------------------------------------------------------

def test_parse_with_a_pydantic_model_returns_the_parsed_object(base):
    for seed in range(3):
        completion = client(base).chat.completions.parse(
            model="qwen", messages=USER, response_format=Person, seed=seed, max_tokens=200)
        choice = completion.choices[0]
        assert choice.finish_reason == "stop", choice
        assert isinstance(choice.message.parsed, Person), choice.message.content


@pytest.mark.parametrize("model", ["qwen", "gemma"])
def test_json_object_is_a_json_object_whole_and_streamed(model, base):
    c = client(base)
    for seed in range(3):
        answer = c.chat.completions.create(model=model, messages=USER, seed=seed, max_tokens=200,
                                           response_format={"type": "json_object"})
        assert answer.choices[0].finish_reason == "stop"
        assert isinstance(json.loads(answer.choices[0].message.content), dict)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in c.chat.completions.create(
        model=model, messages=USER, seed=9, max_tokens=200, stream=True,
        response_format={"type": "json_object"}) if chunk.choices)
    assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize("strict", [True, False])
def test_json_schema_output_validates_against_the_schema(base, strict):
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER, "strict": strict}}
    for seed in range(5):
        answer = client(base).chat.completions.create(
            model="qwen", messages=USER, seed=seed, max_tokens=200, response_format=fmt)
        jsonschema.validate(json.loads(answer.choices[0].message.content), WEATHER)


def test_a_schema_the_grammar_compiler_rejects_is_400_naming_response_format(base):
    fmt = {"type": "json_schema", "json_schema": {"name": "bad", "strict": True,
           "schema": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}}
    status, body = post_json(f"{base}/v1/chat/completions", {
        "model": "qwen", "messages": USER, "max_tokens": 20, "response_format": fmt})
    assert status == 400, body
    assert body["error"]["param"] == "response_format"


def test_strict_refuses_a_keyword_it_cannot_enforce_and_non_strict_skips_it(base):
    schema = {"type": "object", "additionalProperties": False, "required": ["tags"],
              "properties": {"tags": {"type": "array", "uniqueItems": True, "maxItems": 3,
                                      "items": {"enum": ["a", "b", "c"]}}}}

    def ask(strict):
        return post_json(f"{base}/v1/chat/completions", {
            "model": "qwen", "messages": USER, "max_tokens": 100, "seed": 1,
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "t", "strict": strict, "schema": schema}}})
    status, body = ask(True)
    assert status == 400 and body["error"]["param"] == "response_format", body
    assert "uniqueItems" in body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as e:  # streamed: 400 before any chunk
        client(base).chat.completions.create(
            model="qwen", messages=USER, max_tokens=100, stream=True,
            response_format={"type": "json_schema", "json_schema": {
                "name": "t", "strict": True, "schema": schema}})
    assert e.value.body["param"] == "response_format"
    status, body = ask(False)
    assert status == 200, body
    value = json.loads(body["choices"][0]["message"]["content"])
    assert set(value["tags"]) <= {"a", "b", "c"} and len(value["tags"]) <= 3


# --- tools --------------------------------------------------------------------

def test_tool_choice_required_yields_a_valid_call_in_10_of_10_seeds(base):
    c = client(base)
    for seed in range(10):
        answer = c.chat.completions.create(model="qwen", messages=USER, tools=TOOLS, seed=seed,
                                           tool_choice="required", max_tokens=300)
        choice = answer.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        assert choice.message.tool_calls, choice
        for call in choice.message.tool_calls:
            assert call.id.startswith("call_") and call.type == "function"
            schema = next(t["function"]["parameters"] for t in TOOLS
                          if t["function"]["name"] == call.function.name)
            jsonschema.validate(json.loads(call.function.arguments), schema)


def test_a_named_function_is_the_one_called(base):
    for seed in range(3):
        answer = client(base).chat.completions.create(
            model="qwen", messages=USER, tools=TOOLS, seed=seed, max_tokens=300,
            tool_choice={"type": "function", "function": {"name": "get_time"}})
        calls = answer.choices[0].message.tool_calls
        assert [c.function.name for c in calls] == ["get_time"]
        jsonschema.validate(json.loads(calls[0].function.arguments), TOOLS[1]["function"]["parameters"])


def test_a_tool_round_trip_with_the_sdk(base):
    c = client(base)
    messages = list(USER)
    first = c.chat.completions.create(model="qwen", messages=messages, tools=TOOLS, seed=1,
                                      tool_choice="required", parallel_tool_calls=False,
                                      max_tokens=300)
    message = first.choices[0].message
    assert len(message.tool_calls) == 1
    messages.append(message)
    messages.append({"role": "tool", "tool_call_id": message.tool_calls[0].id,
                     "content": json.dumps({"temperature": 21})})
    second = c.chat.completions.create(model="qwen", messages=messages, tools=TOOLS, seed=1,
                                       max_tokens=20)
    choice = second.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert isinstance(choice.message.content, str)
    # The call and its result are in the prompt, rendered by the template.
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + 10


def test_tool_calls_stream_as_deltas(base):
    calls, finish = {}, None
    for chunk in client(base).chat.completions.create(
            model="qwen", messages=USER, tools=TOOLS, seed=3, tool_choice="required",
            max_tokens=300, stream=True):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                call["name"] += (delta.function and delta.function.name) or ""
                call["arguments"] += (delta.function and delta.function.arguments) or ""
    assert finish == "tool_calls"
    assert calls
    for call in calls.values():
        assert call["id"].startswith("call_")
        schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == call["name"])
        jsonschema.validate(json.loads(call["arguments"]), schema)


def test_tool_choice_none_offers_no_tools(base):
    with_tools = client(base).chat.completions.create(
        model="qwen", messages=USER, tools=TOOLS, tool_choice="none", max_tokens=4, seed=1)
    plain = client(base).chat.completions.create(model="qwen", messages=USER, max_tokens=4, seed=1)
    assert with_tools.choices[0].message.tool_calls is None
    # Tools are not rendered: the prompt is the plain one.
    assert with_tools.usage.prompt_tokens == plain.usage.prompt_tokens


def test_tools_on_a_model_whose_template_renders_none_are_400(base):
    status, body = post_json(f"{base}/v1/chat/completions", {
        "model": "gemma", "messages": USER, "tools": TOOLS, "max_tokens": 4})
    assert status == 400 and body["error"]["param"] == "tools", body


def test_auto_routes_tools_to_the_mlx_model_that_renders_them(base):
    raw = client(base).chat.completions.with_raw_response.create(
        model="auto", messages=USER, tools=TOOLS, tool_choice="required", max_tokens=300)
    answer = raw.parse()
    assert answer.model == "qwen"
    assert answer.choices[0].message.tool_calls


def _runner():
    path = ROOT / "crates" / "orchestrator" / "src" / "engine" / "mlx_runner.py"
    spec = importlib.util.spec_from_file_location("mlx_runner_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_auto_parses_qwen3_tool_call_blocks():
    # tool_choice "auto" leaves a random model free, and it never calls a
    # tool by chance: the parser of its output is tested on its own.
    parse = _runner().parse_tool_calls
    text = ('Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
            '</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": "{\\"city\\": \\"Oslo\\"}"}'
            '\n</tool_call>')
    rest, calls = parse(text)
    assert rest.strip() == "Let me look."
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert json.loads(calls[1]["function"]["arguments"]) == {"city": "Oslo"}
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    # Not a call: stays text.
    rest, calls = parse("<tool_call>not json</tool_call> and <tool_call>")
    assert calls == [] and "not json" in rest


# --- sampling fields ------------------------------------------------------------

def test_logprobs_have_top_logprobs_of_the_requested_length(base):
    answer = client(base).chat.completions.create(
        model="qwen", messages=USER, logprobs=True, top_logprobs=3, max_tokens=8, seed=2)
    choice = answer.choices[0]
    content = choice.logprobs.content
    # One entry per generated token; the end-of-turn token that stops a reply has none.
    ended = 0 if choice.finish_reason == "length" else 1
    assert len(content) == answer.usage.completion_tokens - ended
    raw = bytes(b for t in content for b in t.bytes)
    assert raw.decode("utf-8", errors="replace") == choice.message.content
    for token in content:
        assert len(token.top_logprobs) == 3
        assert token.logprob <= 0 and token.bytes is not None
        ranked = [t.logprob for t in token.top_logprobs]
        assert ranked == sorted(ranked, reverse=True)
        assert token.logprob <= ranked[0] + 1e-6
    streamed = []
    for chunk in client(base).chat.completions.create(
            model="qwen", messages=USER, logprobs=True, top_logprobs=2, max_tokens=8, seed=2,
            stream=True):
        for choice in chunk.choices:
            if choice.logprobs and choice.logprobs.content:
                streamed.extend(choice.logprobs.content)
    assert 0 < len(streamed) <= 8
    assert all(len(t.top_logprobs) == 2 for t in streamed)


def test_top_logprobs_beyond_20_is_400_naming_it(base):
    status, body = post_json(f"{base}/v1/chat/completions", {
        "model": "qwen", "messages": USER, "logprobs": True, "top_logprobs": 21})
    assert status == 400 and body["error"]["param"] == "top_logprobs", body


def test_n_2_returns_two_choices_whole_and_streamed(base):
    answer = client(base).chat.completions.create(model="qwen", messages=USER, n=2, max_tokens=6,
                                                  seed=4)
    assert [c.index for c in answer.choices] == [0, 1]
    single = client(base).chat.completions.create(model="qwen", messages=USER, max_tokens=6, seed=4)
    # The prompt is counted once, the completions of both choices summed.
    assert answer.usage.prompt_tokens == single.usage.prompt_tokens
    if all(c.finish_reason == "length" for c in answer.choices):
        assert answer.usage.completion_tokens == 12
    assert answer.usage.completion_tokens > single.usage.completion_tokens
    seen, finishes = set(), {}
    for chunk in client(base).chat.completions.create(model="qwen", messages=USER, n=2,
                                                      max_tokens=6, seed=4, stream=True):
        for choice in chunk.choices:
            seen.add(choice.index)
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert seen == {0, 1} and set(finishes) == {0, 1}


def test_a_seed_repeats_a_sampled_reply(base):
    def ask(**extra):
        return client(base).chat.completions.create(
            model="qwen", messages=USER, max_tokens=12, temperature=1.0, **extra)
    for extra in ({}, {"n": 2}, {"response_format": {"type": "json_object"}}):
        a, b = ask(seed=11, **extra), ask(seed=11, **extra)
        assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]


def _token_id(text):
    vocab = json.loads((ROOT / "target" / "test-models" / "qwen3" / "tokenizer.json").read_text())
    return vocab["model"]["vocab"][text]


def test_logit_bias_forces_and_bans_a_token(base):
    token = _token_id("x")
    answer = client(base).chat.completions.create(
        model="qwen", messages=USER, max_tokens=6, seed=1, logit_bias={str(token): 100})
    assert answer.choices[0].message.content == "x" * 6
    status, body = post_json(f"{base}/v1/chat/completions", {
        "model": "qwen", "messages": USER, "logit_bias": {"999999": 5}})
    assert status == 400 and body["error"]["param"] == "logit_bias", body


def test_penalties_change_a_greedy_reply(base):
    def ask(**extra):
        return client(base).chat.completions.create(
            model="qwen", messages=USER, max_tokens=16, temperature=0, logprobs=True, **extra
        ).choices[0].logprobs.content
    plain = ask()
    tokens = [t.token for t in plain]
    # A random model's greedy reply repeats itself; a penalty breaks that.
    assert len(set(tokens)) < len(tokens)
    for field in ("presence_penalty", "frequency_penalty"):
        penalised = [t.token for t in ask(**{field: 2.0})]
        assert penalised != tokens, field


def test_litellm_reads_forced_tool_calls_n_choices_and_json_from_mlx(base):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    common = {"model": "openai/qwen", "api_base": f"{base}/v1", "api_key": "unused",
              "messages": USER}
    r = litellm.completion(**common, tools=TOOLS, tool_choice="required", max_tokens=300, seed=5)
    assert r.choices[0].finish_reason == "tool_calls"
    call = r.choices[0].message.tool_calls[0]
    schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == call.function.name)
    jsonschema.validate(json.loads(call.function.arguments), schema)
    r = litellm.completion(**common, n=2, max_tokens=4)
    assert len(r.choices) == 2
    r = litellm.completion(**common, max_tokens=200, seed=5,
                           response_format={"type": "json_schema", "json_schema": {
                               "name": "weather", "schema": WEATHER, "strict": True}})
    jsonschema.validate(json.loads(r.choices[0].message.content), WEATHER)
