"""The model refiner of `/v2/fragments` on the real binary: the small tier
(a tiny random model on the mlx engine) is asked once per fragment that
mechanical fixes cannot lift, and the tokens it spends are metered.
Assertions are about what the service did, never about the (random) text."""

import time

from conftest import get_json, post_json

# A TODO and commented-out code: nothing a mechanical fix may touch.
BODY = (
    "def area(w, h):\n"
    "    # TODO: reject negative sizes\n"
    "    # area = w * h * 2\n"
    "    return w * h\n"
)


def usage_of(base, model):
    report = get_json(f"{base}/v2/usage?group_by=model")
    return next((g for g in report["groups"] if g["key"] == model), None)


def test_the_model_refiner_asks_the_small_tier_once_and_meters_its_tokens(native):
    before = usage_of(native, "gemma") or {"requests": 0, "completion_tokens": 0}
    request = {"fragments": [{"path": "geo.py", "body": BODY}], "hygiene_threshold": 0.99}

    # The mechanical refiner has nothing for it and spends nothing.
    status, env = post_json(f"{native}/v2/fragments", request)
    assert status == 200, env
    assert env["pending"][0]["reason"] == "refiner_exhausted"
    original = env["pending"][0]["hygiene"]["score"]
    assert (usage_of(native, "gemma") or before)["requests"] == before["requests"]

    status, env = post_json(f"{native}/v2/fragments", {**request, "refiner": "model"})
    assert status == 200, env
    rounds = [e for e in env["events"] if e["iteration"] >= 1]
    assert rounds, env["events"]
    if env["pending"]:
        pending = env["pending"][0]
        # Whatever the model wrote, the fragment kept is never worse than the one sent.
        assert pending["hygiene"]["score"] >= original
        assert pending["reason"] in {
            "refiner_failed", "refinement_regressed", "refiner_exhausted", "max_iterations",
        }, pending
        if pending["reason"] == "refiner_failed":
            assert "the model (gemma) refiner failed: model gemma: " in pending["message"], pending
    else:
        assert env["absorbed"][0]["refinements"] >= 1

    deadline = time.monotonic() + 5
    while True:
        after = usage_of(native, "gemma")
        if after and after["requests"] > before["requests"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after["requests"] == before["requests"] + 1, after
    assert after["completion_tokens"] > before["completion_tokens"], after
