"""Fixtures: the real `service` binary (built with pymlx) and real peers.

Every process started here runs on 127.0.0.1 and is stopped by its PID.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from harpoon_http import free_port, wait_http  # noqa: E402  (shared with the other suite)
from conformance import check  # noqa: E402
MODELS = ROOT / "target" / "test-models"
HF_CACHE = ROOT / "target" / "hf-cache"
BINARY = Path(os.environ.get("HARPOON_SERVICE_BIN", ROOT / "target" / "service-pymlx"))
VENV_BIN = ROOT / ".venv" / "bin"


def _checked(method, url, status, headers, raw):
    """The answer's JSON, after checking it against OpenAI's schemas (/v1 routes)."""
    text = raw.decode()
    check(method, urllib.parse.urlsplit(url).path, status, headers.get("content-type", ""), text)
    return json.loads(text)


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return _checked("GET", url, r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return _checked("GET", url, e.code, e.headers, e.read())


def post_json(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, _checked("POST", url, r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return e.code, _checked("POST", url, e.code, e.headers, e.read())


def model_env(name, family, tier, **extra):
    env = {
        f"HARPOON__MODELS__{name.upper()}__REPO": str(MODELS / family),
        f"HARPOON__MODELS__{name.upper()}__TIER": tier,
        f"HARPOON__MODELS__{name.upper()}__CONTEXT_LIMIT": "2048",
        f"HARPOON__MODELS__{name.upper()}__MAX_NEW_TOKENS": "64",
    }
    for key, value in extra.items():
        env[f"HARPOON__MODELS__{name.upper()}__{key.upper()}"] = str(value)
    return env


@contextmanager
def running_service(env):
    assert BINARY.is_file(), f"{BINARY} is missing: `make test` builds it"
    port = free_port()
    data = tempfile.mkdtemp(prefix="harpoon-e2e-")
    full = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(ROOT / "target" / "e2e-home"),
        "HARPOON__STORAGE__DATA_DIR": data,
        "SERVICE_PORT": str(port),
        "RUST_LOG": "warn",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(HF_CACHE),
        **env,
    }
    proc = subprocess.Popen([str(BINARY)], env=full)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def running_mlx_server(family):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(HF_CACHE)}
    proc = subprocess.Popen(
        [str(VENV_BIN / "mlx_lm.server"), "--model", str(MODELS / family),
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def native():
    """gemma (small, resident) and qwen (large, loads on demand) on the mlx engine."""
    env = {
        **model_env("gemma", "gemma3_text", "small"),
        **model_env("qwen", "qwen3", "large", resident="false", idle_unload_secs=600),
    }
    with running_service(env) as base:
        yield base
