"""Tokens/s through Harpoon against mlx-lm called directly, A/B interleaved.

  A = POST /v1/chat/completions on the release `service` built with pymlx
      (HTTP, routing, the Rust<->Python token channel), timed by the client;
  B = mlx_lm.stream_generate in this process on the same model, prompt,
      chat template and greedy sampler, timed the same way (wall clock of the
      whole generation, prompt processing included);
  S = A with a JSON schema (response_format json_schema, strict): the cost of
      constrained decoding (llguidance's token mask computed and applied at
      every step). The schema's one unbounded string keeps the model writing
      until max_tokens nears, as A does; S/A compares tokens/s.

A, B and S alternate round by round.

Run with the project venv: .venv/bin/python scripts/bench-tokens.py
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_CACHE", str(ROOT / "target" / "hf-cache"))

from mlx_lm import load, stream_generate  # noqa: E402
from mlx_lm.sample_utils import make_sampler  # noqa: E402

PROMPT = "Tell me a long story about the river, the old mill and the miller's daughter."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--model", default=str(ROOT / "target" / "test-models" / "qwen3"))
    ap.add_argument("--binary", default=str(ROOT / "target" / "service-pymlx"))
    args = ap.parse_args()

    port = free_port()
    env = {**os.environ, "SERVICE_PORT": str(port), "RUST_LOG": "warn",
           "HARPOON__MODELS__GEMMA__REPO": args.model,
           "HARPOON__MODELS__GEMMA__ENABLE_THINKING": "false",
           "HARPOON__MODELS__GEMMA__MAX_NEW_TOKENS": str(args.max_tokens),
           "HARPOON__MODELS__QWEN__REPO": args.model}
    svc = subprocess.Popen([args.binary], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                health = json.loads(urllib.request.urlopen(f"{url}/health?detailed=true").read())
                if health["models"][0]["load_state"] == "loaded":
                    break
            except OSError:
                pass
            time.sleep(0.05)
        model, tokenizer = load(args.model)
        messages = [{"role": "user", "content": PROMPT}]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                             enable_thinking=False)
        prompt = tokenizer.encode(text, add_special_tokens=False)
        plain = {"model": "gemma", "messages": messages, "max_tokens": args.max_tokens,
                 "temperature": 0}
        schema = {"type": "object", "additionalProperties": False,
                  "required": ["title", "story"],
                  "properties": {"title": {"type": "string", "maxLength": 40},
                                 "story": {"type": "string"}}}
        constrained = {**plain, "response_format": {"type": "json_schema", "json_schema": {
            "name": "story", "schema": schema, "strict": True}}}

        def post(body):
            req = urllib.request.Request(f"{url}/v1/chat/completions", data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
            t0 = time.perf_counter()
            answer = json.loads(urllib.request.urlopen(req).read())
            return answer, time.perf_counter() - t0

        def service():
            answer, secs = post(plain)
            return answer["usage"]["completion_tokens"], secs

        def with_schema():
            answer, secs = post(constrained)
            value = json.loads(answer["choices"][0]["message"]["content"])
            assert set(value) == {"title", "story"}, value
            return answer["usage"]["completion_tokens"], secs

        def direct():
            t0 = time.perf_counter()
            n = 0
            for r in stream_generate(model, tokenizer, prompt, max_tokens=args.max_tokens,
                                     sampler=make_sampler(temp=0.0)):
                n = r.generation_tokens
            return n, time.perf_counter() - t0

        service(), direct(), with_schema()  # warm all three (S builds llguidance's tokenizer)
        rows = {"A": [], "B": [], "S": []}
        print(f"model {args.model}, max_tokens {args.max_tokens}, greedy; side tokens seconds tokens/s")
        for _ in range(args.rounds):
            for side, fn in (("A", service), ("B", direct), ("S", with_schema)):
                n, secs = fn()
                rows[side].append((n, secs))
                print(f"{side} {n} {secs:.4f} {n / secs:,.0f}")
        counts = {n for side in ("A", "B") for n, _ in rows[side]}
        assert len(counts) == 1, f"A and B must generate the same tokens: {counts}"
        med = {s: statistics.median(n / t for n, t in v) for s, v in rows.items()}
        print(f"median A (Harpoon): {med['A']:,.0f} tokens/s; median B (mlx-lm direct): {med['B']:,.0f} tokens/s; "
              f"median S (Harpoon, JSON schema): {med['S']:,.0f} tokens/s")
        print(f"A/B ratio: {med['A'] / med['B']:.3f}")
        print(f"S/A ratio (constrained decoding's cost): {med['S'] / med['A']:.3f}")
    finally:
        svc.terminate()
        svc.wait(timeout=30)


if __name__ == "__main__":
    main()
