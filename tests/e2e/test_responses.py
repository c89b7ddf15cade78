"""OpenAI's Responses API (issue 20), driven by the official `openai` SDK's
`responses.create`, `responses.stream`, `retrieve` and `delete`, against the
tiny models in-process (mlx), behind `mlx_lm.server`, and through the
recorded-shape OpenAI peer (function calls). Every Response object and every
streamed event is checked against OpenAI's published schema (the client's
httpx hook, tests/conformance.py)."""

import json
import time
import urllib.request

import openai
import pytest

from conformance import httpx_hook
from conftest import MODELS, get_json, model_env, post_json, running_mlx_server, running_service
from openai_peer import recorded_requests, running_openai_peer
from openai_schema import validate, validate_response_events

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
    "strict": True,
}


def client(base, key="unused"):
    http = openai.DefaultHttpxClient(event_hooks={"response": [httpx_hook]})
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, http_client=http)


@pytest.fixture(scope="module")
def served():
    """gemma in-process (mlx), gemmaup (the tiny Gemma behind mlx_lm.server)
    and gpt (the OpenAI peer, which answers tools with function calls)."""
    with running_mlx_server("gemma3_text") as gemma_port, running_openai_peer() as peer:
        env = {
            **model_env("gemma", "gemma3_text", "small", max_new_tokens=16),
            **model_env("qwen", "qwen3", "large", resident="false", max_new_tokens=96),
            "HARPOON__MODELS__GEMMAUP__ENGINE": "openai",
            "HARPOON__MODELS__GEMMAUP__REPO": str(MODELS / "gemma3_text"),
            "HARPOON__MODELS__GEMMAUP__BASE_URL": f"http://127.0.0.1:{gemma_port}/v1",
            "HARPOON__MODELS__GPT__ENGINE": "openai",
            "HARPOON__MODELS__GPT__REPO": "openai/gpt-4o-mini",
            "HARPOON__MODELS__GPT__BASE_URL": peer,
            "HARPOON__MODELS__GPT__SERVED_MODEL": "gpt-4o-mini",
        }
        with running_service(env) as base:
            yield base, peer


@pytest.mark.parametrize("model", ["gemma", "gemmaup", "auto"])
def test_create_returns_a_response_with_its_text_and_usage(served, model):
    base, _ = served
    r = client(base).responses.create(model=model, input="Say hello", max_output_tokens=8,
                                      instructions="Be brief.")
    assert r.id.startswith("resp_") and r.object == "response"
    assert r.status in ("completed", "incomplete")
    assert r.model in ("gemma", "gemmaup")
    assert r.instructions == "Be brief."
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert isinstance(r.output_text, str)
    assert 0 < r.usage.output_tokens <= 8 and r.usage.input_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


@pytest.mark.parametrize("model", ["gemma", "gemmaup"])
def test_stream_sends_the_documented_events_and_the_same_text(served, model):
    base, _ = served
    with client(base).responses.stream(model=model, input="Count to three",
                                       max_output_tokens=8) as stream:
        events = list(stream)
        # The SDK's final response exists for a completed one; a model that ran
        # out of tokens ends with response.incomplete, as OpenAI's do.
        final = stream.get_final_response() if events[-1].type == "response.completed" \
            else events[-1].response
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert final.status == kinds[-1].removeprefix("response.")
    if final.output_text:
        assert kinds.index("response.output_item.added") < kinds.index("response.output_text.delta")
        assert "response.output_text.done" in kinds and "response.output_item.done" in kinds
    assert final.usage.output_tokens > 0
    stored = client(base).responses.retrieve(final.id)
    assert stored.output_text == final.output_text


def test_the_raw_stream_names_each_event_by_its_type(served):
    base, _ = served
    req = urllib.request.Request(
        f"{base}/v1/responses",
        data=json.dumps({"model": "gemma", "input": "hi", "stream": True,
                         "max_output_tokens": 4}).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = validate_response_events(r.read().decode())
    assert events[-1]["response"]["usage"]["output_tokens"] > 0


def test_previous_response_id_continues_the_conversation(served):
    base, _ = served
    c = client(base)
    first = c.responses.create(model="gemma", input="My name is Ada.", max_output_tokens=4)
    second = c.responses.create(model="gemma", input="What is my name?", max_output_tokens=4,
                                previous_response_id=first.id)
    assert second.previous_response_id == first.id
    alone = c.responses.create(model="gemma", input="What is my name?", max_output_tokens=4)
    # The earlier turn and its answer are in the prompt the model read.
    assert second.usage.input_tokens >= alone.usage.input_tokens + first.usage.output_tokens + 2
    c.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as e:
        c.responses.create(model="gemma", input="again", previous_response_id=first.id)
    assert e.value.body["param"] == "previous_response_id"


def test_store_false_keeps_nothing(served):
    base, _ = served
    c = client(base)
    r = c.responses.create(model="gemma", input="hi", max_output_tokens=2, store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(r.id)


def test_a_function_tool_round_trip(served):
    base, peer = served
    c = client(base)
    first = c.responses.create(model="gpt", input="Weather in Paris?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert "city" in json.loads(calls[0].arguments)
    second = c.responses.create(
        model="gpt", previous_response_id=first.id, tools=[WEATHER], tool_choice="none",
        input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                "output": json.dumps({"temperature_c": 18})}])
    assert second.output_text
    sent = recorded_requests(peer)[-1]["messages"]
    assert sent[-2]["role"] == "assistant"
    assert sent[-2]["tool_calls"][0]["id"] == calls[0].call_id
    assert sent[-1] == {"role": "tool", "tool_call_id": calls[0].call_id,
                        "content": json.dumps({"temperature_c": 18})}


@pytest.mark.parametrize("stream", [False, True])
def test_a_function_tool_round_trip_on_the_in_process_engine(served, stream):
    """Qwen3 in-process: tool_choice "required" is enforced by constrained
    decoding (issue 19), so even the random-weight model calls the function
    with arguments that fit its schema; its output then answers the call."""
    base, _ = served
    c = client(base)
    ask = dict(model="qwen", input="Weather in Paris?", tools=[WEATHER], tool_choice="required")
    if stream:
        with c.responses.stream(**ask) as s:
            events = list(s)
        first = events[-1].response
        assert "response.function_call_arguments.done" in [e.type for e in events]
    else:
        first = c.responses.create(**ask)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather", first.output
    arguments = json.loads(calls[0].arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    second = c.responses.create(
        model="qwen", previous_response_id=first.id, tools=[WEATHER], tool_choice="none",
        max_output_tokens=8,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 C"}])
    assert second.status in ("completed", "incomplete")
    assert second.output[0].type == "message"
    alone = c.responses.create(model="qwen", input="x", tools=[WEATHER], tool_choice="none",
                               max_output_tokens=1)
    # The call and its output are in the prompt the model read.
    assert second.usage.input_tokens > alone.usage.input_tokens + 10


def test_a_streamed_function_call_comes_as_argument_deltas(served):
    base, _ = served
    with client(base).responses.stream(model="gpt", input="Weather?", tools=[WEATHER],
                                       tool_choice={"type": "function", "name": "get_weather"}) as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    call = next(item for item in final.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments)


def test_text_format_json_schema_reaches_the_upstream(served):
    base, peer = served
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    r = client(base).responses.create(model="gpt", input="a number", text={
        "format": {"type": "json_schema", "name": "num", "schema": schema, "strict": True}})
    assert isinstance(json.loads(r.output_text)["n"], int)
    sent = recorded_requests(peer)[-1]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "num", "schema": schema, "strict": True}}


@pytest.mark.parametrize("body, param", [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"background": True}, "background"),
    ({"reasoning": {"effort": "high"}}, "reasoning"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"input": []}, "input"),
    ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0].text"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"truncation": "auto"}, "truncation"),
])
def test_what_is_not_supported_is_refused_by_name(served, body, param):
    base, _ = served
    status, answer = post_json(f"{base}/v1/responses", {"model": "gemma", "input": "hi", **body})
    assert status == 400, answer
    assert answer["error"]["param"] == param, answer
    assert answer["error"]["type"] == "invalid_request_error"


def test_unset_fields_sent_as_null_ask_nothing(served):
    base, _ = served
    status, answer = post_json(f"{base}/v1/responses", {
        "model": "gemma", "input": "hi", "max_output_tokens": 2, "reasoning": None,
        "include": [], "background": False, "truncation": "disabled", "user": None})
    assert status == 200, answer
    validate("Response", answer)


def test_text_format_is_honoured_by_the_in_process_engine(served):
    """`text.format` becomes chat's `response_format`, which the mlx engine
    enforces by constrained decoding (issue 19)."""
    base, _ = served
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False}
    status, answer = post_json(f"{base}/v1/responses", {
        "model": "gemma", "input": "a number",
        "text": {"format": {"type": "json_schema", "name": "n", "schema": schema, "strict": True}}})
    assert status == 200, answer
    assert answer["status"] == "completed", answer
    assert isinstance(json.loads(answer["output"][0]["content"][0]["text"])["a"], int)


def test_a_format_the_engine_cannot_enforce_is_refused_by_the_responses_name(served):
    base, _ = served
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    status, answer = post_json(f"{base}/v1/responses", {
        "model": "gemma", "input": "numbers",
        "text": {"format": {"type": "json_schema", "name": "n", "schema": schema, "strict": True}}})
    assert status == 400 and answer["error"]["param"] == "text.format", answer


def test_another_tenants_response_is_not_found(tmp_path):
    admin = "hk_" + "A" * 40
    env = {**model_env("gemma", "gemma3_text", "small", max_new_tokens=4),
           **model_env("qwen", "qwen3", "large", resident="false"),
           "HARPOON__AUTH__MODE": "required", "HARPOON_ADMIN_KEY": admin}
    with running_service(env) as base:
        keys = []
        for name in ("acme", "globex"):
            for path, body in ((f"{base}/v2/admin/tenants", {"name": name}),
                               (f"{base}/v2/admin/tenants/{name}/keys", {})):
                req = urllib.request.Request(path, data=json.dumps(body).encode(), headers={
                    "content-type": "application/json", "authorization": f"Bearer {admin}"})
                with urllib.request.urlopen(req, timeout=30) as r:
                    answer = json.loads(r.read())
            keys.append(answer["key"])
        acme, globex = client(base, keys[0]), client(base, keys[1])
        mine = acme.responses.create(model="gemma", input="secret plan", max_output_tokens=2)
        assert acme.responses.retrieve(mine.id).id == mine.id
        with pytest.raises(openai.NotFoundError):
            globex.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            globex.responses.create(model="gemma", input="go on", previous_response_id=mine.id)
        with pytest.raises(openai.NotFoundError):
            globex.responses.delete(mine.id)
        assert acme.responses.retrieve(mine.id).id == mine.id


def test_responses_are_metered_in_the_usage_ledger(served):
    base, _ = served

    def gemma(at_least=0):
        # The ledger is written behind the answer: wait (bounded) for the row.
        for _ in range(100):
            rows = get_json(f"{base}/v2/usage?group_by=model")["groups"]
            row = next((g for g in rows if g["key"] == "gemma"),
                       {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
            if row["requests"] >= at_least:
                return row
            time.sleep(0.05)
        raise AssertionError(f"the ledger has {row['requests']} gemma requests, not {at_least}")

    before = gemma()
    r = client(base).responses.create(model="gemma", input="count me", max_output_tokens=3)
    after = gemma(before["requests"] + 1)
    assert after["prompt_tokens"] - before["prompt_tokens"] == r.usage.input_tokens
    assert after["completion_tokens"] - before["completion_tokens"] == r.usage.output_tokens
