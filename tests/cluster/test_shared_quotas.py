"""Three replicas behind HAProxy sharing one Redis (Debian's redis-server,
started here on a free loopback port) next to one PostgreSQL: a tenant's
request rate, requests in flight and daily tokens hold across the cluster as
if it were one process (issue 22).  Every process runs on 127.0.0.1 and is
stopped by its PID.
"""

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import ADMIN_KEY, call, cluster
from harpoon_http import free_port

UPSTREAM_DELAY = 0.3


@pytest.fixture(scope="module")
def redis_url():
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() == "PONG":
                    break
            except subprocess.TimeoutExpired:
                pass
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def shared(redis_url):
    # Three debug replicas and a dozen callers on two cores: a command can
    # wait on the CPU well past the default 1 s, which is not what is tested.
    env = {"REDIS_URL": redis_url, "HARPOON__CLUSTER__REDIS_TIMEOUT_MS": "5000"}
    with cluster(env, upstream_delay=UPSTREAM_DELAY) as (base, replicas):
        yield base, replicas


def tenant_key(base, name, quota):
    status, tenant = call(f"{base}/v2/admin/tenants", ADMIN_KEY, {"name": name, "quota": quota})
    assert status == 201, tenant
    status, created = call(f"{base}/v2/admin/tenants/{tenant['id']}/keys", ADMIN_KEY, {})
    assert status == 201, created
    return created["key"]


def chat(base, key, text, max_tokens=4):
    """(status, body, error code) of one chat completion."""
    body = {"model": "gemma", "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": text}]}
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), None
    except urllib.error.HTTPError as e:
        payload = json.loads(e.read() or b"null")
        return e.code, payload, (payload or {}).get("error", {}).get("code")


def upstream_stats(replicas, method="GET"):
    """The upstream's requests in flight now and at most (reset by DELETE)."""
    base = replicas[0].env["HARPOON__MODELS__GEMMA__BASE_URL"].removesuffix("/v1")
    req = urllib.request.Request(f"{base}/_stats", method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_a_tenant_gets_one_rate_across_three_replicas(shared):
    base, _ = shared
    rate = 120
    key = tenant_key(base, "rated", {"requests_per_minute": rate, "max_concurrent": 1000})
    duration, offered = 60.0, 10 * rate / 60.0  # 10x the rate: 20 requests a second
    outcomes, lock = [], threading.Lock()

    def one(i):
        status, body, code = chat(base, key, f"rate {i}")
        with lock:
            outcomes.append((status, code, time.monotonic()))

    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.monotonic()
        for i in range(int(duration * offered)):
            # Open loop: each request leaves on its own schedule.
            time.sleep(max(0.0, start + i / offered - time.monotonic()))
            pool.submit(one, i)
    elapsed = max(t for _, _, t in outcomes) - start
    accepted = sum(1 for s, _, _ in outcomes if s == 200)
    limited = sum(1 for s, c, _ in outcomes if s == 429 and c == "rate_limited")
    others = [(s, c) for s, c, _ in outcomes if s not in (200, 429)]
    allowed = rate + rate * elapsed / 60.0  # the burst, then the rate
    print(f"rate {rate}/min at {offered:.0f}/s for {elapsed:.1f} s through 3 replicas: "
          f"{accepted} accepted, {limited} refused; one shared bucket allows {allowed:.1f} "
          f"({accepted / allowed - 1:+.2%})")
    assert not others, others[:5]
    assert accepted <= allowed * 1.01, (accepted, allowed)
    assert accepted >= allowed * 0.95, (accepted, allowed)


def test_four_in_flight_at_most_across_three_replicas(shared):
    base, replicas = shared
    key = tenant_key(base, "narrow", {"requests_per_minute": 100000, "max_concurrent": 4})
    # From a quiet upstream, counting this tenant's requests only.
    deadline = time.monotonic() + 30
    while upstream_stats(replicas)["in_flight"]:
        assert time.monotonic() < deadline, "the upstream never went quiet"
        time.sleep(0.1)
    assert upstream_stats(replicas, "DELETE")["max_in_flight"] == 0
    statuses, lock = [], threading.Lock()
    stop = time.monotonic() + 8

    def hammer(worker):
        n = 0
        while time.monotonic() < stop:
            n += 1
            status, _, code = chat(base, key, f"narrow {worker}-{n}")
            with lock:
                statuses.append((status, code))
            if status == 429:
                time.sleep(0.02)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stats = upstream_stats(replicas)
    ok = sum(1 for s, _ in statuses if s == 200)
    refused = sum(1 for s, c in statuses if s == 429 and c == "rate_limited")
    print(f"max_concurrent 4, 12 callers through 3 replicas for 8 s: {ok} answered, "
          f"{refused} refused, at most {stats['max_in_flight']} in flight at the upstream")
    assert all(s in (200, 429) for s, _ in statuses), [x for x in statuses if x[0] not in (200, 429)][:5]
    assert stats["max_in_flight"] <= 4, stats
    assert stats["max_in_flight"] == 4, "the limit is reached, not undercut"
    assert refused > 0 and ok > 0


def test_a_daily_budget_is_spent_once_across_three_replicas(shared):
    base, _ = shared
    budget, max_tokens = 600, 16
    key = tenant_key(base, "frugal", {"requests_per_minute": 100000, "max_concurrent": 1000,
                                      "tokens_per_day": budget})
    spent, reservations, refused, lock = [], [], [], threading.Lock()

    def spend(worker):
        for n in range(40):
            text = f"budget {worker}-{n}"
            status, body, code = chat(base, key, text, max_tokens=max_tokens)
            with lock:
                if status == 200:
                    spent.append(body["usage"]["total_tokens"])
                    # What the gateway reserved: the prompt bound (bytes + 8
                    # per message) plus the most it may generate.
                    reservations.append(len(text) + 8 + max_tokens)
                else:
                    refused.append((status, code))
            if status == 429:
                return

    threads = [threading.Thread(target=spend, args=(w,)) for w in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    total = sum(spent)
    # The ledger agrees with the answers (each replica writes its rows in
    # the background, a tenth of a second apart on a quiet machine).
    deadline = time.monotonic() + 15
    while True:
        status, usage = call(f"{base}/v2/usage", key)
        assert status == 200, usage
        ledger = sum(g["prompt_tokens"] + g["completion_tokens"] for g in usage["groups"])
        requests = sum(g["requests"] - g["errors"] for g in usage["groups"])
        if (ledger, requests) == (total, len(spent)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (ledger, requests) == (total, len(spent)), (ledger, requests, total, len(spent))
    print(f"budget {budget} tokens, 9 callers through 3 replicas: {len(spent)} answered, "
          f"{total} tokens spent, one reservation is at most {max(reservations)}")
    assert refused and all(r == (429, "rate_limited") for r in refused), refused[:5]
    assert total <= budget + max(reservations), (total, budget)
    assert total >= budget - max(reservations), "used up, not refused early"
