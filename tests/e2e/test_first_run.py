"""A first run without weights (issue 18): the service starts, and a model
whose weights are neither local nor fetchable answers 503 naming the model,
where it looked, and the one command that fixes it; that command fails
clearly while the hub cannot be reached."""

import os
import subprocess

from conftest import BINARY, HF_CACHE, post_json, running_service

MISSING = "mlx-community/gemma-3-270m-it-bf16"


def test_missing_weights_answer_503_naming_the_model_the_cache_and_the_fix():
    env = {
        "HARPOON__MODELS__GEMMA__REPO": MISSING,
        "HARPOON__MODELS__GEMMA__TIER": "small",
        "HARPOON__MODELS__QWEN__REPO": MISSING,
    }
    with running_service(env) as base:
        status, body = post_json(f"{base}/v1/chat/completions", {
            "model": "gemma", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert status == 503, body
    message = body["error"]["message"]
    assert body["error"]["code"] == "engine_unavailable"
    assert '"gemma"' in message and MISSING in message, message
    assert str(HF_CACHE) in message, message
    assert "service models pull gemma" in message, message


def test_models_pull_fails_clearly_offline_and_refuses_a_local_directory(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HARPOON__MODELS__GEMMA__REPO": MISSING,
        "HARPOON__STORAGE__DATA_DIR": str(tmp_path / "data"),
    }
    out = subprocess.run([str(BINARY), "models", "pull", "gemma"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert f"downloading {MISSING}" in out.stderr, out.stderr
    local = {**env, "HARPOON__MODELS__GEMMA__REPO": str(tmp_path)}
    out = subprocess.run([str(BINARY), "models", "pull", "gemma"], env=local,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "local directory" in out.stderr, out.stderr
    out = subprocess.run([str(BINARY), "models", "pull", "nope"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "no model is configured" in out.stderr, out.stderr
