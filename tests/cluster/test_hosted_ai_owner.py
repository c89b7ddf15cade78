"""One owner per hosted·ai subscription (issue 22): three replicas on one
PostgreSQL serve `engine: hosted_ai` models through the hosted·ai emulator
(crates/hostedai-emulator, whose pods forward to mlx_lm.server on the tiny
test model). One replica at a time owns the team's pool manager, elected
through a lease row; the others serve through the endpoint it publishes in
the database and ask it for capacity, never subscribing themselves.

Proved here: 50 concurrent first requests on each of the three replicas make
exactly one subscribe call; SIGKILL the owner and another replica owns within
the lease time, adopts the subscription (no second subscribe call) and serves;
the last replica to stop releases it, so none is left running."""

import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import ADMIN_KEY, ROOT, call, cluster, running
from harpoon_http import free_port

EMULATOR = Path(os.environ.get("HARPOON_EMULATOR_BIN",
                               Path(os.environ.get("HARPOON_SERVICE_BIN", ROOT / "target/debug/service"))
                               .with_name("hostedai-emulator")))
LEASE_SECS = 3
MODEL_DIR = ROOT / "target" / "test-models" / "qwen3"


def emulator_config(upstream_port):
    return {
        "pools": [{"id": 1, "name": "h100-a", "gpus": 2, "sharing_ratio": 1.0,
                   "time_quantum_secs": 30, "price_per_vgpu_hour": 2.0, "gpu_model": "H100"}],
        "teams": [{"id": "team-1", "api_key": "key-1"}],
        "delays": {"subscribe_call_ms": 0, "ready_ms": 500, "unsubscribe_ms": 100, "expose_ms": 50},
        "upstream": f"127.0.0.1:{upstream_port}",
        "billing_interval_ms": 100,
        "leak_other_teams": False,
        "expose_conflict": False,
        "list_sharing_ratio": True,
    }


def replica_env(emulator_url):
    env = {
        "HOSTED_AI_BASE_URL": f"{emulator_url}/api",
        "HOSTED_AI_API_KEY": "key-1",
        "HOSTED_AI_TEAM_ID": "team-1",
        "HARPOON__HOSTED_AI__POLL_INTERVAL_MS": "50",
        "HARPOON__HOSTED_AI__SUBSCRIBE_TIMEOUT_SECS": "30",
        "HARPOON__HOSTED_AI__REQUEST_WAIT_SECS": "30",
        "HARPOON__HOSTED_AI__CALL_TIMEOUT_SECS": "5",
        "HARPOON__SERVICE__REQUEST_TIMEOUT_SECS": "60",
        "HARPOON__CLUSTER__LEASE_SECS": str(LEASE_SECS),
        "HF_HUB_OFFLINE": "1",
    }
    if os.environ.get("HARPOON_CLUSTER_LOG"):
        env["RUST_LOG"] = os.environ["HARPOON_CLUSTER_LOG"]
    for model in ("GEMMA", "QWEN"):
        env[f"HARPOON__MODELS__{model}__ENGINE"] = "hosted_ai"
        env[f"HARPOON__MODELS__{model}__REPO"] = str(MODEL_DIR)
        env[f"HARPOON__MODELS__{model}__MAX_NEW_TOKENS"] = "4"
        env[f"HARPOON__MODELS__{model}__CONTEXT_LIMIT"] = "2048"
    return env


def chat(replica, n):
    body = {"model": "gemma", "max_tokens": 4,
            "messages": [{"role": "user", "content": f"hello {n}"}]}
    status, answer = call(f"{replica.url}/v1/chat/completions", ADMIN_KEY, body, timeout=90)
    return status, answer


def state(emulator_url):
    with urllib.request.urlopen(f"{emulator_url}/emulator/state", timeout=10) as r:
        return json.loads(r.read())


def live(emulator_state):
    return [s for s in emulator_state["subscriptions"] if s["status"] != "un_subscribing"]


def owners(replicas):
    """The replicas whose pool manager says it holds the owner lease."""
    found = []
    for replica in replicas:
        status, pools = call(f"{replica.url}/v2/pools", ADMIN_KEY)
        if status == 200 and (pools.get("cluster") or {}).get("owner"):
            found.append(replica)
    return found


def test_one_owner_subscribes_once_and_a_survivor_adopts_when_it_dies(tmp_path):
    assert os.environ.get("DATABASE_URL"), "run under scripts/with-postgres.sh"
    mlx_port, emu_port = free_port(), free_port()
    python = str(ROOT / ".venv" / "bin" / "python")
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps(emulator_config(mlx_port)))
    emulator_url = f"http://127.0.0.1:{emu_port}"
    mlx_env = {"PATH": os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1",
               "HF_HUB_CACHE": str(ROOT / "target" / "hf-cache")}
    with running([python, "-m", "mlx_lm.server", "--model", str(MODEL_DIR), "--host", "127.0.0.1",
                  "--port", str(mlx_port)], f"http://127.0.0.1:{mlx_port}/v1/models", env=mlx_env), \
         running([str(EMULATOR), "--listen", f"127.0.0.1:{emu_port}", "--config", str(config)],
                 f"{emulator_url}/emulator/state", log=os.environ.get("HARPOON_EMULATOR_LOG")):
        with cluster(replica_env(emulator_url), balancer=False, standin_models=False) as (_, replicas):
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=150) as pool:
                answers = list(pool.map(lambda i: chat(replicas[i % 3], i), range(150)))
            took = time.monotonic() - started
            refused = [a for a in answers if a[0] != 200]
            assert not refused, sorted({(a[0], str(a[1])[:300]) for a in refused})
            after_burst = state(emulator_url)
            print(f"150 concurrent first requests (50 per replica) answered in {took:.1f} s; "
                  f"subscribe calls: {after_burst['calls'].get('subscribe')}, "
                  f"expose-service calls: {after_burst['calls'].get('expose-service')}")
            assert after_burst["calls"].get("subscribe") == 1, after_burst["calls"]
            assert after_burst["calls"].get("expose-service") == 1, after_burst["calls"]
            assert len(live(after_burst)) == 1, after_burst["subscriptions"]
            subscription = live(after_burst)[0]["id"]

            owner = owners(replicas)
            assert len(owner) == 1, "exactly one replica owns the pool manager"
            owner = owner[0]
            survivors = [r for r in replicas if r is not owner]
            owner.kill()
            killed = time.monotonic()
            new_owner = []
            while not new_owner:
                assert time.monotonic() - killed < LEASE_SECS + 3, "no replica took over"
                time.sleep(0.1)
                new_owner = owners(survivors)
            took_over = time.monotonic() - killed
            print(f"owner SIGKILLed: another replica owns after {took_over:.2f} s "
                  f"(lease {LEASE_SECS} s)")
            # The lease, plus one renewal period (a third of it), plus the probe's own time.
            assert took_over <= LEASE_SECS + LEASE_SECS / 3 + 1.0
            # Both survivors still serve, through the adopted subscription.
            for i, replica in enumerate(survivors * 5):
                status, answer = chat(replica, 1000 + i)
                assert status == 200, answer
            after_kill = state(emulator_url)
            assert after_kill["calls"].get("subscribe") == 1, after_kill["calls"]
            assert [s["id"] for s in live(after_kill)] == [subscription]
            status, pools = call(f"{new_owner[0].url}/v2/pools", ADMIN_KEY)
            assert [s["subscription_id"] for s in pools["subscriptions"]] == [str(subscription)], pools
        # The cluster stopped one replica after the other: the last one out released it.
        final = state(emulator_url)
        print(f"after the last replica stopped: {len(live(final))} live subscription(s), "
              f"{final['calls'].get('unsubscribe')} unsubscribe call(s)")
        assert live(final) == [], final["subscriptions"]
