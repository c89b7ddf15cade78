"""Three replicas behind HAProxy (Debian's package, deploy/haproxy/haproxy.cfg)
probing /ready, sharing one PostgreSQL (scripts/with-postgres.sh sets
DATABASE_URL; without it each replica has its own SQLite): a rolling restart
of every replica under a steady load fails no request (issue 22).

Each replica gets SIGTERM, answers 503 on /ready while it keeps serving for
service.drain_delay_secs (HAProxy takes it out meanwhile), closes its
listener, finishes what it holds, exits, and is started again on the same
port before the next one goes.  Every process here runs on 127.0.0.1 and is
stopped by its PID.
"""

import json
import threading
import time
import urllib.error
import urllib.request

from harness import ADMIN_KEY, DRAIN_DELAY_SECS, call, cluster


class Load:
    """Steady chat completions through the balancer from a few threads."""

    def __init__(self, base, threads=4):
        self.base, self.stop, self.lock = base, threading.Event(), threading.Lock()
        self.ok, self.failures = 0, []
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, worker):
        n = 0
        while not self.stop.is_set():
            n += 1
            body = {"model": "gemma", "max_tokens": 8, "stream": n % 3 == 0,
                    "messages": [{"role": "user", "content": f"hello {worker}-{n}"}]}
            req = urllib.request.Request(f"{self.base}/v1/chat/completions",
                                         data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json",
                                                  "authorization": f"Bearer {ADMIN_KEY}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    text = r.read().decode()
                    complete = "[DONE]" in text if body["stream"] else '"choices"' in text
                    with self.lock:
                        if r.status == 200 and complete:
                            self.ok += 1
                        else:
                            self.failures.append((r.status, text[:200]))
            except (urllib.error.URLError, OSError) as e:
                detail = e.read().decode()[:200] if isinstance(e, urllib.error.HTTPError) else ""
                with self.lock:
                    self.failures.append((repr(e), detail))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_a_rolling_restart_under_load_fails_no_request():
    with cluster() as (base, replicas), Load(base) as load:
        time.sleep(2)
        before = load.ok
        assert before > 0 and not load.failures, load.failures
        for replica in replicas:
            started = time.monotonic()
            code = replica.terminate_and_wait(limit=DRAIN_DELAY_SECS + 15)
            assert code == 0, f"replica on {replica.port} exited with {code}"
            assert time.monotonic() - started >= DRAIN_DELAY_SECS, "it kept serving while draining"
            replica.start()
            time.sleep(1.5)  # back in rotation after "rise 2" at 500 ms
        time.sleep(1)
    print(f"rolling restart of 3 replicas: {load.ok} requests answered, "
          f"{len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert load.ok > before + 50, "the load went on through the restarts"


def test_a_key_revoked_through_one_replica_is_refused_on_all_within_a_second():
    with cluster() as (_, replicas):
        first = f"http://127.0.0.1:{replicas[0].port}"
        status, tenant = call(f"{first}/v2/admin/tenants", ADMIN_KEY, {"name": "acme"})
        assert status == 201, tenant
        status, created = call(f"{first}/v2/admin/tenants/{tenant['id']}/keys", ADMIN_KEY, {})
        assert status == 201, created
        key, key_id = created["key"], created["record"]["id"]
        # Every replica has the caller cached (a 2 s cache, served stale up to 10 s).
        for replica in replicas:
            assert call(f"http://127.0.0.1:{replica.port}/v1/models", key)[0] == 200
        status, _ = call(f"{first}/v2/admin/keys/{key_id}/revoke", ADMIN_KEY, {})
        assert status == 200
        revoked = time.monotonic()
        for replica in replicas[1:]:
            url = f"http://127.0.0.1:{replica.port}/v1/models"
            while call(url, key)[0] != 401:
                assert time.monotonic() - revoked < 1.0, f"replica on {replica.port} still takes the key"
                time.sleep(0.02)
        print(f"revocation reached every replica within {time.monotonic() - revoked:.3f} s")
