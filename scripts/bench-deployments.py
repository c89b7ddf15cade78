#!/usr/bin/env python3
"""Burst workload on one model, A/B interleaved in one run (issue 21):

  A = primary only: the tiny Gemma on the in-process MLX engine;
  B = the same primary with an overflow deployment, a real `mlx_lm.server`
      on the same tiny model (overflow.queue_depth 1).

Both services run side by side (the overflow server too, idle during A's
rounds); each round sends the same burst (N requests at once, then the next
burst as soon as the last answers) to A then B, or B then A on odd rounds.
Prints p50/p99 latency and throughput per side, their ratios, and B's share
served by the overflow.

    .venv/bin/python scripts/bench-deployments.py --binary target/service-pymlx \\
        --rounds 6 --burst 12 --max-tokens 48
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from harpoon_http import free_port, wait_http  # noqa: E402

MODELS = ROOT / "target" / "test-models"
HF = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(ROOT / "target" / "hf-cache")}

CONFIG = """
models:
  gemma:
    repo: {gemma}
    tier: small
    context_limit: 2048
    max_new_tokens: 256
{deployments}
  qwen:
    repo: {qwen}
    tier: large
    context_limit: 2048
    max_new_tokens: 64
    resident: false
"""
OVERFLOW = """    deployments:
      - {{name: local, role: primary, engine: mlx}}
      - {{name: burst, role: overflow, engine: openai, base_url: "http://127.0.0.1:{port}/v1"}}
    overflow: {{queue_depth: 1, prewarm_queue_depth: 0}}
"""


def start(args, config_text, tmp, name):
    port = free_port()
    config = Path(tmp) / f"{name}.yaml"
    config.write_text(config_text)
    data = Path(tmp) / f"data-{name}"
    data.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "HARPOON_CONFIG": str(config),
           "HARPOON__STORAGE__DATA_DIR": str(data), "SERVICE_PORT": str(port),
           "RUST_LOG": "warn", **HF}
    proc = subprocess.Popen([args.binary], env=env)
    wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
    return proc, f"http://127.0.0.1:{port}"


def chat(base, max_tokens, i):
    body = {"model": "gemma", "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": f"Tell a short story about ship {i}."}]}
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        r.read()
        return time.perf_counter() - started, r.headers.get("x-harpoon-deployment")


def burst(base, n, max_tokens):
    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda i: chat(base, max_tokens, i), range(n)))
    return results, time.perf_counter() - started


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=str(ROOT / "target" / "service-pymlx"))
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--burst", type=int, default=12)
    p.add_argument("--max-tokens", type=int, default=48)
    args = p.parse_args()
    procs = []
    with tempfile.TemporaryDirectory(prefix="harpoon-bench-deployments-") as tmp:
        try:
            mlx_port = free_port()
            procs.append(subprocess.Popen(
                [str(ROOT / ".venv/bin/mlx_lm.server"), "--model", str(MODELS / "gemma3_text"),
                 "--host", "127.0.0.1", "--port", str(mlx_port)],
                env={**os.environ, **HF}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_http(f"http://127.0.0.1:{mlx_port}/health", timeout=120)
            fmt = dict(gemma=MODELS / "gemma3_text", qwen=MODELS / "qwen3")
            a, base_a = start(args, CONFIG.format(deployments="", **fmt), tmp, "a")
            procs.append(a)
            if a.poll() is not None:
                raise SystemExit("service A exited at start")
            b, base_b = start(args, CONFIG.format(deployments=OVERFLOW.format(port=mlx_port), **fmt),
                              tmp, "b")
            procs.append(b)
            for base in (base_a, base_b):  # warm-up: weights paged in, first compile
                burst(base, 2, args.max_tokens)
            sides = {"A primary only": ([], []), "B with overflow": ([], [])}
            served_b = []
            for r in range(args.rounds):
                order = [("A primary only", base_a), ("B with overflow", base_b)]
                for name, base in order if r % 2 == 0 else reversed(order):
                    results, wall = burst(base, args.burst, args.max_tokens)
                    sides[name][0].extend(t for t, _ in results)
                    sides[name][1].append(args.burst / wall)
                    if name.startswith("B"):
                        served_b.extend(d for _, d in results)
            print(f"burst of {args.burst} requests x {args.rounds} rounds, max_tokens "
                  f"{args.max_tokens}, binary {args.binary}")
            figures = {}
            for name, (latencies, throughputs) in sides.items():
                figures[name] = (pct(latencies, 0.5), pct(latencies, 0.99),
                                 statistics.median(throughputs))
                p50, p99, rps = figures[name]
                print(f"{name}: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                      f"throughput {rps:.2f} req/s (median of rounds)")
            (a50, a99, arps), (b50, b99, brps) = figures.values()
            share = served_b.count("gemma/burst") / len(served_b)
            print(f"B/A: p50 {b50 / a50:.2f}, p99 {b99 / a99:.2f}, throughput {brps / arps:.2f}; "
                  f"B's share served by the overflow {share:.0%}")
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
