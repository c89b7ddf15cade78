"""One model, two deployments: the in-process MLX engine as primary and a
real `mlx_lm.server` as overflow (issue 21).

Under a load that fills the primary's queue the overflow takes a share and
no request fails; with the overflow server killed mid-run its breaker opens
and requests fall back to the primary, none hanging; restarted on the same
port, it rejoins after the cool-down.  Every answer names its deployment in
`x-harpoon-deployment`.
"""

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import HF_CACHE, MODELS, VENV_BIN, free_port, running_service, wait_http

COOLDOWN_SECS = 10
CONFIG = """
models:
  gemma:
    repo: {gemma}
    tier: small
    context_limit: 2048
    max_new_tokens: 64
    deployments:
      - {{name: local, role: primary, engine: mlx}}
      - {{name: burst, role: overflow, engine: openai, base_url: "http://127.0.0.1:{port}/v1",
          connect_timeout_secs: 2, read_timeout_secs: 60}}
    overflow: {{queue_depth: 1, prewarm_queue_depth: 1}}
    health: {{failure_threshold: 2, cooldown_secs: {cooldown}}}
  qwen:
    repo: {qwen}
    tier: large
    context_limit: 2048
    max_new_tokens: 64
    resident: false
"""


def start_mlx_server(port):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(HF_CACHE)}
    proc = subprocess.Popen(
        [str(VENV_BIN / "mlx_lm.server"), "--model", str(MODELS / "gemma3_text"),
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def two_deployments():
    port = free_port()
    server = start_mlx_server(port)
    with tempfile.TemporaryDirectory(prefix="harpoon-deployments-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG.format(
            gemma=MODELS / "gemma3_text", qwen=MODELS / "qwen3", port=port,
            cooldown=COOLDOWN_SECS,
        ))
        try:
            with running_service({"HARPOON_CONFIG": str(config)}) as base:
                yield base, port, server
        finally:
            stop(server)


def chat(base, i):
    """(status, deployment header) of one chat; a hang fails the test (timeout)."""
    body = {"model": "gemma", "max_tokens": 32, "temperature": 0,
            "messages": [{"role": "user", "content": f"Count to ten, round {i}."}]}
    req = urllib.request.Request(
        f"{base}/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            json.loads(r.read())
            return r.status, r.headers.get("x-harpoon-deployment")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def burst(base, n, start=0, workers=6):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda i: chat(base, i), range(start, start + n)))


def deployments(base):
    with urllib.request.urlopen(f"{base}/v2/deployments", timeout=10) as r:
        models = json.loads(r.read())["models"]
    gemma = next(m for m in models if m["model"] == "gemma")
    return {d["name"]: d for d in gemma["deployments"]}, gemma["decisions"]


def shares(results):
    served = [d for status, d in results if status == 200]
    return {name: served.count(name) for name in set(served)}


@pytest.fixture(scope="module")
def running():
    with two_deployments() as running:
        yield running


def test_a_quiet_request_stays_on_the_primary(running):
    base, _, _ = running
    status, deployment = chat(base, 0)
    assert status == 200
    assert deployment == "gemma/local"
    listed, decisions = deployments(base)
    assert listed["local"]["role"] == "primary" and listed["burst"]["role"] == "overflow"
    assert listed["local"]["engine"] == "mlx" and listed["burst"]["engine"] == "openai"
    assert decisions[-1]["deployment"] == "gemma/local" and decisions[-1]["kind"] == "primary"


def test_a_stream_names_its_deployment_before_its_first_byte(running):
    base, _, _ = running
    body = {"model": "gemma", "max_tokens": 8, "stream": True,
            "messages": [{"role": "user", "content": "Say hi."}]}
    req = urllib.request.Request(
        f"{base}/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.headers.get("x-harpoon-deployment") == "gemma/local"
        assert r.read().decode().rstrip().endswith("data: [DONE]")


def test_a_full_primary_queue_overflows_and_a_killed_overflow_falls_back(running):
    base, port, server = running
    # 1. Load that fills the in-process engine's queue: the overflow takes a share.
    results = burst(base, 24)
    assert all(status == 200 for status, _ in results), results
    share = shares(results)
    assert share.get("gemma/burst", 0) > 0 and share.get("gemma/local", 0) > 0, share
    print(f"overflow share under load: {share}")
    _, decisions = deployments(base)
    overflowed = [d for d in decisions if d["kind"] == "overflow"]
    assert overflowed and "waiting" in overflowed[-1]["reason"], decisions

    # 2. The overflow server dies in the middle of a burst: requests it was
    # answering (nothing sent to their clients yet) and those meant for it
    # fall back; none fails or hangs, and its breaker opens.
    with ThreadPoolExecutor(1) as background:
        during = background.submit(burst, base, 16, 100)
        time.sleep(0.3)
        stop(server)
        results = during.result(timeout=180)
    assert all(status == 200 for status, _ in results), results
    listed, decisions = deployments(base)
    assert listed["burst"]["breaker"] == "open", listed["burst"]
    assert listed["burst"]["times_ejected"] >= 1
    fallbacks = [d for d in decisions if d["kind"] == "fallback"]
    assert fallbacks and "gemma/burst failed" in fallbacks[0]["reason"], decisions
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert 'harpoon_deployment_breaker_open{model="gemma",deployment="burst"} 1' in metrics
    # While it is out, the primary takes everything.
    results = burst(base, 12, start=150)
    assert all(status == 200 for status, _ in results), results
    assert shares(results) == {"gemma/local": 12}

    # 3. Back on the same port: after the cool-down one trial request closes
    # the breaker and the overflow takes load again.
    server = start_mlx_server(port)
    try:
        time.sleep(COOLDOWN_SECS + 0.5)
        rejoined = {}
        for round_ in range(5):
            results = burst(base, 12, start=200 + 12 * round_)
            assert all(status == 200 for status, _ in results), results
            rejoined = shares(results)
            if rejoined.get("gemma/burst"):
                break
        assert rejoined.get("gemma/burst", 0) > 0, rejoined
        listed, _ = deployments(base)
        assert listed["burst"]["breaker"] == "closed", listed["burst"]
    finally:
        stop(server)
