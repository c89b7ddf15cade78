"""`/metrics` as an operator reads it (issue 23): after real traffic on the
tiny models, Prometheus' own `promtool check metrics` passes on the
exposition, and the series answer what an operator asks: prompt and
completion tokens per model, requests per model by outcome and finish
reason, nothing left in flight, time between streamed tokens, whole-stream
duration, the gateway's own time (also on every inference response as
`x-harpoon-overhead-ms`), router decisions by tier, whether each model is
loaded, and resident memory."""

import json
import re
import subprocess
import time
import urllib.request

import openai
import pytest

from conftest import ROOT, get_json, model_env, running_service

PROMTOOL = ROOT / "target" / "tools" / "promtool"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(base):
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        return r.read().decode()


def samples(text):
    """{(name, frozenset of label pairs): value} of every sample."""
    out = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        out[(match.group(1), labels)] = float(match.group(3))
    return out


def value(found, name, **labels):
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


@pytest.fixture(scope="module")
def traffic():
    env = {**model_env("gemma", "gemma3_text", "small", max_new_tokens=8),
           **model_env("qwen", "qwen3", "large", resident="false", max_new_tokens=8)}
    with running_service(env) as base:
        c = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        whole = c.chat.completions.with_raw_response.create(
            model="gemma", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        streamed = list(c.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hello there"}], max_tokens=6,
            stream=True, stream_options={"include_usage": True}))
        with pytest.raises(openai.NotFoundError):
            c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the ledger and counters settle behind the answer
            found = samples(scrape(base))
            if value(found, "harpoon_model_requests_total") >= 3:
                break
            time.sleep(0.05)
        yield base, whole, streamed, scrape(base)


def test_promtool_accepts_the_exposition(traffic):
    *_, text = traffic
    assert PROMTOOL.is_file(), f"{PROMTOOL} is missing: `make setup` extracts it"
    out = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            name = line.split()[2]
            assert f"# HELP {name} " in text, f"{name} has no help text"


def test_tokens_and_requests_per_model(traffic):
    _, whole, streamed, text = traffic
    found = samples(text)
    usage = json.loads(whole.text)["usage"]
    stream_usage = streamed[-1].usage
    prompt = value(found, "harpoon_prompt_tokens_total", model="gemma")
    completion = value(found, "harpoon_completion_tokens_total", model="gemma")
    assert prompt == usage["prompt_tokens"] + stream_usage.prompt_tokens
    assert completion == usage["completion_tokens"] + stream_usage.completion_tokens
    assert value(found, "harpoon_model_requests_total", model="gemma", outcome="ok",
                 route="/v1/chat/completions") == 2
    assert value(found, "harpoon_model_requests_total", model="none",
                 outcome="client_error") == 1, "an unknown model is not a label value"
    assert sum(value(found, "harpoon_model_requests_total", model="gemma", finish_reason=r)
               for r in ("stop", "length")) == 2
    assert value(found, "harpoon_requests_in_flight", model="gemma") == 0
    assert value(found, "router_classifications_total", tier="small") >= 1


def test_latencies_overhead_and_state(traffic):
    _, whole, streamed, text = traffic
    found = samples(text)
    deltas = sum(1 for ch in streamed for c in ch.choices if c.delta.content)
    # One gap between each two streamed chunks (a random model may stop after one).
    assert value(found, "harpoon_model_inter_token_latency_seconds_count",
                 model="gemma") >= min(deltas - 1, 1)
    assert value(found, "harpoon_inference_duration_seconds_count", model="gemma") == 2
    assert value(found, "harpoon_gateway_overhead_seconds_count",
                 route="/v1/chat/completions") == 3
    overhead = float(whole.headers["x-harpoon-overhead-ms"])
    # The gateway's own share of what the client waited.
    assert 0 <= overhead < whole.elapsed.total_seconds() * 1e3
    assert value(found, "harpoon_model_loaded", model="gemma", engine="mlx") == 1
    assert value(found, "harpoon_model_loaded", model="qwen", engine="mlx") == 0
    assert value(found, "process_resident_memory_bytes") > 10e6


def test_overhead_is_on_every_inference_response_and_only_there(traffic):
    base, *_ = traffic
    for path, body in (("/run", {"text": "hi", "max_tokens": 2}),
                       ("/v1/responses", {"model": "gemma", "input": "hi", "max_output_tokens": 2}),
                       ("/v1/chat/completions", {"model": "gemma", "messages": []})):
        req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                headers = r.headers
        except urllib.error.HTTPError as e:
            headers = e.headers
        assert float(headers["x-harpoon-overhead-ms"]) >= 0, path
    with urllib.request.urlopen(f"{base}/health", timeout=10) as r:
        assert "x-harpoon-overhead-ms" not in r.headers
    assert get_json(f"{base}/v1/models")["object"] == "list"


def test_quota_refusals_are_counted_by_kind():
    env = {**model_env("gemma", "gemma3_text", "small", max_new_tokens=4),
           **model_env("qwen", "qwen3", "large", resident="false"),
           "HARPOON__QUOTAS__REQUESTS_PER_MINUTE": "6", "HARPOON__QUOTAS__TOKENS_PER_DAY": "1"}
    chat = ("/v1/chat/completions", {
        "model": "gemma", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    with running_service(env) as base:
        refused = {"chat": 0, "classify": 0}
        for path, body in [chat] * 3 + [("/classify", {"text": "hi"})] * 5:
            req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=60).close()
            except urllib.error.HTTPError as e:
                assert e.code == 429, e.read()
                refused["chat" if path == chat[0] else "classify"] += 1
        found = samples(scrape(base))
    # A day's budget of one token: the first chat spends it, a later one is refused;
    # eight requests at six a minute: the last are refused by the rate.
    tokens = value(found, "harpoon_quota_refusals_total", kind="tokens_per_day")
    rate = value(found, "harpoon_quota_refusals_total", kind="requests_per_minute")
    assert tokens >= 1 and rate >= 1, (tokens, rate)
    assert tokens + rate == refused["chat"] + refused["classify"], (tokens, rate, refused)
