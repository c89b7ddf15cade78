"""OpenAI fidelity (issue 16): schema-exact answers and errors, every request
field honoured or refused with 400 naming it, pass-through to upstreams,
and `auto` choosing only among models that can serve the request.

Every answer is checked against the official OpenAI schemas by the clients
of conftest.py and `client()` (tests/conformance.py); the tests below check
what the schemas cannot: which fields were honoured, passed or refused.
"""

import json
import os
import urllib.request

import openai
import pytest

from conformance import httpx_hook
from conftest import MODELS, get_json, model_env, post_json, running_mlx_server, running_service
from openai_peer import recorded_requests, running_openai_peer
from openai_schema import validate, validate_sse

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}]


def client(base):
    http = openai.DefaultHttpxClient(event_hooks={"response": [httpx_hook]})
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, http_client=http)


@pytest.fixture(scope="module")
def mixed():
    """gemma (small tier, in-process mlx: no tools), qwen (large tier, the tiny
    Qwen3 behind `mlx_lm.server`: its template takes tools), gemmaup (no tier,
    the tiny Gemma 3 behind `mlx_lm.server`: its template insists on
    alternating turns) and `gpt` (no tier, the recorded-shape OpenAI peer)."""
    with running_mlx_server("qwen3") as qwen_port, running_mlx_server("gemma3_text") as gemma_port, \
            running_openai_peer() as peer:
        env = {
            "HARPOON__MODELS__GEMMAUP__ENGINE": "openai",
            "HARPOON__MODELS__GEMMAUP__REPO": str(MODELS / "gemma3_text"),
            "HARPOON__MODELS__GEMMAUP__BASE_URL": f"http://127.0.0.1:{gemma_port}/v1",
            **model_env("gemma", "gemma3_text", "small"),
            **model_env("qwen", "qwen3", "large", engine="openai",
                        base_url=f"http://127.0.0.1:{qwen_port}/v1"),
            "HARPOON__MODELS__GPT__ENGINE": "openai",
            "HARPOON__MODELS__GPT__REPO": "openai/gpt-4o-mini",
            "HARPOON__MODELS__GPT__BASE_URL": peer,
            "HARPOON__MODELS__GPT__SERVED_MODEL": "gpt-4o-mini",
        }
        with running_service(env) as base:
            yield base, peer


def raw_post(url, body):
    """POST returning (status, content type, text), for streams."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers["content-type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read().decode()


# --- shapes ---------------------------------------------------------------

def test_a_completion_conforms_with_null_logprobs_and_refusal(native):
    status, body = post_json(f"{native}/v1/chat/completions", {
        "model": "gemma", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert status == 200
    validate("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    assert choice["logprobs"] is None and choice["message"]["refusal"] is None


def test_every_streamed_chunk_conforms_and_usage_is_null_until_the_last(native):
    status, kind, text = raw_post(f"{native}/v1/chat/completions", {
        "model": "gemma", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6,
        "stream": True, "stream_options": {"include_usage": True}})
    assert status == 200 and kind.startswith("text/event-stream")
    chunks = validate_sse(text)
    assert len(chunks) >= 3
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_models_and_each_model_conform_and_retrieve_works(native):
    listed = get_json(f"{native}/v1/models")
    for card in listed["data"]:
        one = get_json(f"{native}/v1/models/{card['id']}")
        assert one["id"] == card["id"]
    c = client(native)
    auto = c.models.retrieve("auto")
    assert auto.id == "auto" and auto.object == "model"
    with pytest.raises(openai.NotFoundError) as e:
        c.models.retrieve("no-such-model")
    assert e.value.body["code"] == "model_not_found"


@pytest.mark.parametrize("body, param", [
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
    ({"model": "gemma", "messages": []}, "messages"),
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "top_p": 0}, "top_p"),
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "gemma", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "logprobs": True,
      "top_logprobs": 21}, "top_logprobs"),
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "presence_penalty": 2.5},
     "presence_penalty"),
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 101}},
     "logit_bias"),
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"a": 1}},
     "logit_bias"),
    ({"model": "gemma", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2},
     "top_logprobs"),
])
def test_invalid_input_is_400_bad_request_naming_the_field(native, body, param):
    with pytest.raises(openai.BadRequestError) as e:
        client(native).chat.completions.create(**body)
    error = e.value.body
    assert e.value.status_code == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


def test_error_bodies_have_type_param_and_code(native):
    status, body = post_json(f"{native}/v1/chat/completions", {
        "model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert status == 404
    assert body["error"]["type"] == "not_found_error"
    assert body["error"]["code"] == "model_not_found"
    assert "param" in body["error"]


# --- refused by the in-process engine --------------------------------------

# Tools on gemma: its template renders none (on qwen they are honoured, as
# are response formats, logprobs, penalties, logit_bias and n:
# test_mlx_structured.py).
@pytest.mark.parametrize("field, value", [
    ("tools", TOOLS),
    ("user", "someone"),
    ("an_unknown_field", 1),
])
def test_the_mlx_engine_refuses_what_it_does_not_honour_naming_it(native, field, value):
    status, body = post_json(f"{native}/v1/chat/completions", {
        "model": "gemma", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2,
        field: value})
    assert status == 400, body
    assert body["error"]["param"] == field
    assert body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("field, value", [
    ("response_format", {"type": "json_object"}),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
    ("logprobs", True),
    ("top_logprobs", 2),
    ("presence_penalty", 0.5),
    ("frequency_penalty", 0.5),
    ("logit_bias", {"5": 10}),
    ("n", 2),
])
def test_the_mlx_engine_honours_structured_output_and_sampling_fields(native, field, value):
    body = {"model": "gemma", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2,
            field: value}
    if field == "top_logprobs":
        body["logprobs"] = True
    status, answer = post_json(f"{native}/v1/chat/completions", body)
    assert status == 200, answer
    if field == "n":
        assert len(answer["choices"]) == 2
    if field in ("logprobs", "top_logprobs"):
        assert answer["choices"][0]["logprobs"]["content"]


def test_explicit_defaults_are_honoured_not_refused(native):
    status, body = post_json(f"{native}/v1/chat/completions", {
        "model": "gemma", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2,
        "n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0,
        "response_format": {"type": "text"}, "tools": [], "tool_choice": "none"})
    assert status == 200, body


def test_image_parts_and_function_roles_are_refused_by_name_on_mlx(native):
    image = {"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}
    status, body = post_json(f"{native}/v1/chat/completions", {"model": "gemma", "messages": [image]})
    assert status == 400 and body["error"]["param"] == "messages[0].content[1]", body
    status, body = post_json(f"{native}/v1/chat/completions", {"model": "gemma", "messages": [
        {"role": "user", "content": "x"}, {"role": "function", "name": "f", "content": "1"}]})
    assert status == 400 and body["error"]["param"] == "messages[1]", body


def test_message_fields_are_refused_by_name_on_mlx_unless_empty(native):
    status, body = post_json(f"{native}/v1/chat/completions", {"model": "gemma", "max_tokens": 2,
        "messages": [{"role": "user", "content": "x", "name": "ann"}]})
    assert status == 400 and body["error"]["param"] == "messages[0].name", body
    # An earlier answer sent back as the SDK dumps it asks nothing more.
    echoed = {"role": "assistant", "content": "hello", "refusal": None, "annotations": [],
              "audio": None, "function_call": None, "tool_calls": None}
    status, body = post_json(f"{native}/v1/chat/completions", {"model": "gemma", "max_tokens": 2,
        "messages": [{"role": "user", "content": "hi"}, echoed, {"role": "user", "content": "and?"}]})
    assert status == 200, body


# --- conversations normalised ----------------------------------------------

@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "Be brief."}, {"role": "developer", "content": "Use French."},
     {"role": "user", "content": "hi"}],
    [{"role": "system", "content": "a"}, {"role": "system", "content": "b"},
     {"role": "user", "content": "hi"}],
    [{"role": "assistant", "content": "How can I help?"}, {"role": "user", "content": "hi"}],
    [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
])
def test_valid_conversations_are_never_a_template_400(native, mixed, messages):
    for base, models in ((native, ("auto", "gemma")), (mixed[0], ("auto", "gemma", "gemmaup"))):
        for model in models:
            status, body = post_json(f"{base}/v1/chat/completions", {
                "model": model, "messages": messages, "max_tokens": 2})
            assert status == 200, (base, model, body)


# --- capability-aware routing -----------------------------------------------

def test_auto_with_tools_goes_to_a_model_that_takes_tools(mixed):
    base, _ = mixed
    raw = client(base).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], tools=TOOLS, max_tokens=4)
    assert raw.parse().model == "qwen"
    assert raw.headers["x-harpoon-tier"] == "large"


def test_auto_with_a_tool_round_trip_goes_to_a_model_that_takes_tools(mixed):
    base, _ = mixed
    status, body = post_json(f"{base}/v1/chat/completions", {"model": "auto", "max_tokens": 4, "messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}], "tools": TOOLS})
    assert status == 200, body
    assert body["model"] == "qwen"


def test_a_pinned_model_without_tools_is_400_naming_the_capability(mixed):
    base, _ = mixed
    with pytest.raises(openai.BadRequestError) as e:
        client(base).chat.completions.create(
            model="gemma", messages=[{"role": "user", "content": "hi"}], tools=TOOLS)
    assert e.value.body["param"] == "tools"
    assert "tools" in e.value.body["message"]


def test_models_say_what_each_can_take(mixed):
    cards = {c["id"]: c for c in get_json(f"{mixed[0]}/v1/models")["data"]}
    assert cards["gemma"]["capabilities"]["tools"] is False
    assert cards["qwen"]["capabilities"]["tools"] is True
    assert cards["auto"]["capabilities"]["tools"] is True


# --- pass-through to OpenAI-compatible upstreams ----------------------------

def test_tool_calls_logprobs_and_fields_pass_through_unchanged(mixed):
    base, peer = mixed
    sent = {"model": "gpt", "messages": [{"role": "user", "content": "weather?"}], "tools": TOOLS,
            "tool_choice": "required", "parallel_tool_calls": False, "logprobs": True,
            "top_logprobs": 2, "presence_penalty": 0.1, "frequency_penalty": 0.2,
            "logit_bias": {"50256": -100}, "user": "u-1", "metadata": {"k": "v"}, "seed": 7,
            "service_tier": "default"}
    status, body = post_json(f"{base}/v1/chat/completions", sent)
    assert status == 200, body
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])
    got = recorded_requests(peer)[-1]
    for field in ("tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs",
                  "presence_penalty", "frequency_penalty", "logit_bias", "user", "metadata",
                  "seed", "service_tier"):
        assert got[field] == sent[field], field
    assert got["messages"] == sent["messages"]


def test_streamed_tool_call_deltas_pass_through(mixed):
    base, _ = mixed
    status, _, text = raw_post(f"{base}/v1/chat/completions", {
        "model": "gpt", "messages": [{"role": "user", "content": "weather?"}], "tools": TOOLS,
        "stream": True, "stream_options": {"include_usage": True}})
    assert status == 200
    chunks = validate_sse(text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert calls and calls[0]["function"]["name"] == "get_weather"
    arguments = "".join(c["function"].get("arguments", "") for c in calls)
    assert "city" in json.loads(arguments)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes.count("tool_calls") == 1 and finishes[-1] == "tool_calls"
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_a_tool_round_trip_and_images_reach_the_upstream_as_sent(mixed):
    base, peer = mixed
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    status, body = post_json(f"{base}/v1/chat/completions", {"model": "gpt", "messages": messages})
    assert status == 200, body
    assert recorded_requests(peer)[-1]["messages"] == messages


def test_the_official_sdk_reads_tool_calls_and_n_choices(mixed):
    base, _ = mixed
    c = client(base)
    r = c.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}],
                                  tools=TOOLS, tool_choice="required")
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    r = c.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], n=2)
    assert [ch.index for ch in r.choices] == [0, 1]


def test_litellm_as_a_client_with_n_2_through_an_upstream_that_supports_it(mixed):
    base, _ = mixed
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    r = litellm.completion(model="openai/gpt", api_base=f"{base}/v1", api_key="unused",
                           messages=[{"role": "user", "content": "hi"}], n=2, max_tokens=8)
    assert len(r.choices) == 2
    assert all(isinstance(ch.message.content, str) for ch in r.choices)
    r = litellm.completion(model="openai/gemma", api_base=f"{base}/v1", api_key="unused",
                           messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert r.choices[0].finish_reason in ("stop", "length")
