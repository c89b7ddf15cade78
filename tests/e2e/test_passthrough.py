"""`/v1/embeddings` and `/v1/completions` (issue 20) pass through to
OpenAI-compatible upstreams: `mlx_lm.server` (completions) and the
recorded-shape OpenAI peer (both), driven by the official `openai` SDK, every
answer and streamed chunk checked against OpenAI's schemas; the in-process
mlx engine answers 503 naming why; the usage ledger meters them."""

import json
import time
import urllib.request

import openai
import pytest

from conformance import httpx_hook
from conftest import MODELS, get_json, model_env, post_json, running_mlx_server, running_service
from openai_peer import recorded_requests, running_openai_peer


def client(base):
    http = openai.DefaultHttpxClient(event_hooks={"response": [httpx_hook]})
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, http_client=http)


@pytest.fixture(scope="module")
def served():
    """gemma in-process (mlx), qwenup (the tiny Qwen3 behind mlx_lm.server,
    large tier, so `auto` routes hard prompts to it) and gpt (the OpenAI peer)."""
    with running_mlx_server("qwen3") as qwen_port, running_openai_peer() as peer:
        env = {
            **model_env("gemma", "gemma3_text", "small"),
            **model_env("qwen", "qwen3", "large", engine="openai",
                        base_url=f"http://127.0.0.1:{qwen_port}/v1"),
            "HARPOON__MODELS__GPT__ENGINE": "openai",
            "HARPOON__MODELS__GPT__REPO": "openai/gpt-4o-mini",
            "HARPOON__MODELS__GPT__BASE_URL": peer,
            "HARPOON__MODELS__GPT__SERVED_MODEL": "text-embedding-3-small",
        }
        with running_service(env) as base:
            yield base, peer


def test_embeddings_pass_through_with_their_fields(served):
    base, peer = served
    r = client(base).embeddings.create(model="gpt", input=["one", "two"], dimensions=4)
    assert [d.index for d in r.data] == [0, 1] and len(r.data[0].embedding) == 4
    assert r.model == "gpt" and r.usage.prompt_tokens > 0
    sent = recorded_requests(peer)[-1]
    assert sent == {"model": "text-embedding-3-small", "input": ["one", "two"], "dimensions": 4,
                    "encoding_format": "base64"}


def test_completions_pass_through_whole_and_streamed(served):
    base, _ = served
    c = client(base)
    for model in ("gpt", "qwen"):
        r = c.completions.create(model=model, prompt="Once upon a time", max_tokens=5)
        assert r.model == model and r.choices[0].finish_reason in ("stop", "length")
        assert 0 < r.usage.completion_tokens <= 5
        chunks = list(c.completions.create(model=model, prompt="Once", max_tokens=4, stream=True))
        assert chunks and all(ch.model == model for ch in chunks)
        # Harpoon asks the upstream for usage to meter; the caller did not ask, so sees none.
        assert all(ch.usage is None for ch in chunks)
        asked = list(c.completions.create(model=model, prompt="Once", max_tokens=4, stream=True,
                                          stream_options={"include_usage": True}))
        assert asked[-1].usage is not None and asked[-1].usage.completion_tokens > 0


def test_auto_routes_a_completion_by_its_prompt(served):
    base, _ = served
    r = client(base).completions.with_raw_response.create(
        model="auto", prompt="Prove that there are infinitely many primes.", max_tokens=3)
    assert r.headers["x-harpoon-tier"] == "large"
    assert r.parse().model == "qwen"


@pytest.mark.parametrize("path, body, status, needle", [
    ("/v1/embeddings", {"model": "gemma", "input": "x"}, 503, "does not serve /v1/embeddings"),
    ("/v1/completions", {"model": "gemma", "prompt": "x"}, 503, "does not serve /v1/completions"),
    ("/v1/embeddings", {"model": "auto", "input": "x"}, 400, "named model"),
    ("/v1/embeddings", {"model": "gpt", "input": []}, 400, "input"),
    ("/v1/completions", {"model": "gpt"}, 400, "prompt"),
    ("/v1/completions", {"model": "nope", "prompt": "x"}, 404, "nope"),
    ("/v1/completions", {"model": "gpt", "prompt": "x", "stream": True, "stream_options": 5},
     400, "stream_options"),
])
def test_what_cannot_be_served_says_why(served, path, body, status, needle):
    base, _ = served
    got, answer = post_json(f"{base}{path}", body)
    assert got == status, answer
    assert needle in answer["error"]["message"], answer
    if status == 503:
        assert '"gemma"' in answer["error"]["message"] and answer["error"]["code"] == "engine_unavailable"


def test_the_usage_ledger_meters_them(served):
    base, _ = served
    c = client(base)

    def gpt(requests=None):
        # The ledger is written behind the answer: wait (bounded) for the row.
        for _ in range(100):
            groups = get_json(f"{base}/v2/usage?group_by=model")["groups"]
            row = next((g for g in groups if g["key"] == "gpt"),
                       {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
            if requests is None or row["requests"] >= requests:
                return row
            time.sleep(0.05)
        raise AssertionError(f"the ledger has {row['requests']} gpt requests, not {requests}")

    before = gpt()
    c.embeddings.create(model="gpt", input="meter me")
    after_embedding = gpt(before["requests"] + 1)
    assert after_embedding["requests"] == before["requests"] + 1
    assert after_embedding["prompt_tokens"] > before["prompt_tokens"]
    assert after_embedding["completion_tokens"] == before["completion_tokens"]
    c.completions.create(model="gpt", prompt="meter me", max_tokens=3)
    after_completion = gpt(after_embedding["requests"] + 1)
    assert after_completion["completion_tokens"] == after_embedding["completion_tokens"] + 3


def test_an_upstream_refusal_keeps_its_status(served):
    base, _ = served
    req = urllib.request.Request(f"{base}/v1/completions", data=json.dumps(
        {"model": "gpt", "prompt": None}).encode(), headers={"content-type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=30)
        raise AssertionError("a null prompt was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400
