"""The service end to end with the official `openai` client: real tiny
models on the mlx engine, `mlx_lm.server` as an OpenAI-compatible upstream.
Assertions are about structure, never about the (random) text."""

import time

import openai
import pytest

from conformance import httpx_hook

from conftest import (
    MODELS, free_port, get_json, model_env, post_json, running_mlx_server, running_service,
)


def client(base, **kw):
    """The official client, every answer it gets checked against OpenAI's schemas."""
    http = openai.DefaultHttpxClient(event_hooks={"response": [httpx_hook]})
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0,
                         http_client=http, **kw)


def test_models_lists_auto_and_each_configured_model(native):
    ids = [m.id for m in client(native).models.list().data]
    assert ids == ["auto", "gemma", "qwen"]


def test_auto_routes_simple_prompts_to_the_small_tier(native):
    raw = client(native).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi there"}], max_tokens=8,
    )
    assert raw.headers["x-harpoon-tier"] == "small"
    assert 0.0 <= float(raw.headers["x-harpoon-complexity"]) <= 1.0
    r = raw.parse()
    assert r.model == "gemma"
    assert r.object == "chat.completion"
    assert isinstance(r.choices[0].message.content, str)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert 1 <= r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_auto_routes_complex_prompts_to_the_large_tier_which_loads_on_demand(native):
    before = {m["name"]: m for m in get_json(f"{native}/health?detailed=true")["models"]}
    assert before["gemma"]["load_state"] == "loaded", "the small tier is resident"
    raw = client(native).chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Prove that there are infinitely many primes, step by step."}],
        max_tokens=6,
    )
    assert raw.headers["x-harpoon-tier"] == "large"
    assert raw.parse().model == "qwen"
    after = {m["name"]: m for m in get_json(f"{native}/health?detailed=true")["models"]}
    assert after["qwen"]["load_state"] == "loaded"


def test_streaming_sends_chunks_usage_and_matches_the_whole_answer(native):
    c = client(native)
    args = dict(model="gemma", messages=[{"role": "user", "content": "Say something."}],
                max_tokens=16, temperature=0)
    whole = c.chat.completions.create(**args)
    chunks = list(c.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_generation_metrics_are_exported_per_model(native):
    client(native).chat.completions.create(
        model="gemma", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    import urllib.request
    text = urllib.request.urlopen(f"{native}/metrics").read().decode()
    for metric in ("harpoon_model_request_seconds_bucket", "harpoon_model_time_to_first_token_seconds_bucket",
                   "harpoon_model_tokens_per_second_bucket"):
        assert f'{metric}{{model="gemma",le=' in text, metric
    line = next(l for l in text.splitlines() if l.startswith('harpoon_model_generated_tokens_total{model="gemma"}'))
    assert float(line.split()[-1]) >= 1


def test_a_seed_reproduces_a_sampled_answer(native):
    c = client(native)
    args = dict(model="gemma", messages=[{"role": "user", "content": "Go on."}],
                max_tokens=16, temperature=1.0, seed=11)
    assert c.chat.completions.create(**args).choices[0].message.content == \
        c.chat.completions.create(**args).choices[0].message.content


def test_unknown_model_is_404_model_not_found(native):
    with pytest.raises(openai.NotFoundError) as e:
        client(native).chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["code"] == "model_not_found"


def test_run_and_process_generate_with_the_routed_model(native):
    status, body = post_json(f"{native}/run", {"text": "hello, how are you?", "max_tokens": 5})
    assert status == 200, body
    assert body["model"] == "gemma" and body["tier"] == "small" and body["category"] == "simple"
    assert isinstance(body["output"], str) and 1 <= body["usage"]["completion_tokens"] <= 5
    assert body["latency_ms"] > 0

    status, body = post_json(f"{native}/v2/process", {"text": "hi", "deployment": "Native",
                                                     "fragment_context": [{"path": "a.rs"}]})
    assert status == 200, body
    assert body["deployment_used"] == "native"
    assert body["classification"]["model"] == "gemma"
    fusion = body["fusion"]  # a context fragment without a body takes the request text
    assert [a["fragment"]["body"] for a in fusion["absorbed"]] == ["hi"]
    assert len(fusion["chain"]) == 1 and len(fusion["envelope_hash"]) == 64
    assert isinstance(body["inference"]["output"], str)

    status, body = post_json(f"{native}/v2/process", {"text": "hi", "deployment": "HostedAI"})
    assert status == 503 and body["error"]["code"] == "engine_unavailable"


def test_a_prompt_over_the_context_limit_is_400_context_length_exceeded():
    env = model_env("gemma", "gemma3_text", "small", context_limit=64, max_new_tokens=16)
    with running_service(env) as base:
        with pytest.raises(openai.BadRequestError) as e:
            client(base).chat.completions.create(
                model="gemma", messages=[{"role": "user", "content": "the river and the mill " * 40}],
            )
        assert e.value.body["code"] == "context_length_exceeded"


def test_the_openai_engine_serves_through_mlx_lm_server():
    with running_mlx_server("qwen3") as port:
        env = model_env("gemma", "qwen3", "small", engine="openai",
                        base_url=f"http://127.0.0.1:{port}/v1", served_model=str(MODELS / "qwen3"))
        with running_service(env) as base:
            c = client(base)
            r = c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                          max_tokens=8)
            assert r.model == "gemma" and 1 <= r.usage.completion_tokens <= 8
            chunks = list(c.chat.completions.create(
                model="gemma", messages=[{"role": "user", "content": "hi"}], max_tokens=8,
                stream=True, stream_options={"include_usage": True}))
            assert chunks[-1].usage.completion_tokens >= 1
            assert any(ch.choices and ch.choices[0].finish_reason for ch in chunks)
            health = get_json(f"{base}/health?detailed=true")
            assert health["deployment_modes"] == ["native"]
            assert health["models"][0]["load_state"] == "remote"


def test_an_unreachable_upstream_is_503_within_the_timeout():
    dead = free_port()
    env = model_env("gemma", "qwen3", "small", engine="openai",
                    base_url=f"http://127.0.0.1:{dead}/v1", connect_timeout_secs=1)
    with running_service(env) as base:
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as e:
            client(base).chat.completions.create(model="gemma", messages=[{"role": "user", "content": "hi"}])
        assert e.value.status_code == 503
        assert e.value.body["code"] == "upstream_unavailable"
        assert time.monotonic() - started < 5


def test_successful_generations_are_in_the_usage_ledger(native):
    c = client(native)
    r = c.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    deadline = time.monotonic() + 5
    while True:
        report = get_json(f"{native}/v2/usage?group_by=model")
        gemma = [g for g in report["groups"] if g["key"] == "gemma"]
        if gemma and gemma[0]["completion_tokens"] >= r.usage.completion_tokens or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert gemma and gemma[0]["requests"] >= 1
    assert gemma[0]["completion_tokens"] >= r.usage.completion_tokens


def test_a_spent_daily_token_budget_answers_429_with_retry_after():
    env = {**model_env("gemma", "gemma3_text", "small"), "HARPOON__QUOTAS__TOKENS_PER_DAY": "20"}
    with running_service(env) as base:
        c = client(base)
        c.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "hello there"}],
                                  max_tokens=16)
        deadline = time.monotonic() + 5
        while True:
            try:
                c.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "hi"}],
                                          max_tokens=4)
            except openai.RateLimitError as e:
                assert e.body["code"] == "rate_limited"
                retry = int(e.response.headers["retry-after"])
                assert 1 <= retry <= 86_400
                break
            assert time.monotonic() < deadline, "the budget was never enforced"
            time.sleep(0.1)


def test_a_tool_message_to_a_model_without_tools_is_400_naming_it(native):
    with pytest.raises(openai.BadRequestError) as e:
        client(native).chat.completions.create(
            model="gemma", messages=[{"role": "tool", "content": "x"}], max_tokens=4)
    # The model's template takes no tool messages: refused before it is asked.
    assert e.value.body["code"] == "invalid_request"
    assert e.value.body["param"] == "messages[0]"
    assert "tools" in e.value.body["message"]
