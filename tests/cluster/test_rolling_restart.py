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
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harpoon_http import free_port, wait_http  # noqa: E402
from openai_peer import DEFAULT_MODELS, running_openai_peer  # noqa: E402

BINARY = Path(os.environ.get("HARPOON_SERVICE_BIN", ROOT / "target" / "debug" / "service"))
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
DRAIN_DELAY_SECS = 2
# The first key, from the environment, as a deployment sets it on every replica.
ADMIN_KEY = "hk_" + "Cl4" * 13 + "x"


class Replica:
    """One service process on a fixed port, restartable with the same state."""

    def __init__(self, port, env, data):
        self.port, self.env, self.data, self.proc = port, env, data, None

    def start(self, wait=True):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.data),
            "SERVICE_PORT": str(self.port),
            "HARPOON__STORAGE__DATA_DIR": str(self.data),
            "RUST_LOG": "warn",
            **self.env,
        }
        self.proc = subprocess.Popen([str(BINARY)], env=env)
        if wait:
            self.wait_ready()

    def wait_ready(self):
        wait_http(f"http://127.0.0.1:{self.port}/ready", timeout=60)

    def terminate_and_wait(self, limit):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=limit)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@contextmanager
def cluster(extra_env=None, upstream_delay=0.0):
    """Three replicas on one PostgreSQL behind HAProxy, the OpenAI stand-in
    (answering after `upstream_delay` s) as every model; yields the
    balancer's URL and the replicas."""
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="harpoon-cluster-") as tmp:
        upstream = stack.enter_context(running_openai_peer(delay=upstream_delay))
        env = {"HARPOON__SERVICE__DRAIN_DELAY_SECS": str(DRAIN_DELAY_SECS),
               "HARPOON__SERVICE__SHUTDOWN_GRACE_SECS": "10",
               "HARPOON__QUOTAS__REQUESTS_PER_MINUTE": "1000000",
               "HARPOON__QUOTAS__MAX_CONCURRENT": "1000",
               "HARPOON__AUTH__MODE": "required",
               "HARPOON_ADMIN_KEY": ADMIN_KEY}
        if os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        for model in ("GEMMA", "QWEN"):
            env[f"HARPOON__MODELS__{model}__ENGINE"] = "openai"
            env[f"HARPOON__MODELS__{model}__BASE_URL"] = upstream
            env[f"HARPOON__MODELS__{model}__SERVED_MODEL"] = DEFAULT_MODELS[0]
        env.update(extra_env or {})
        replicas = []
        for i in range(3):
            data = Path(tmp) / f"replica{i + 1}"
            data.mkdir()
            replica = Replica(free_port(), env, data)
            # All at once, as a deployment starts them: migrations and the
            # first key on one database must not trip over each other.
            replica.start(wait=False)
            stack.callback(replica.stop)
            replicas.append(replica)
        for replica in replicas:
            replica.wait_ready()
        lb_port = free_port()
        lb_env = {**os.environ, "HARPOON_LB_BIND": f"127.0.0.1:{lb_port}"}
        for i, replica in enumerate(replicas):
            lb_env[f"HARPOON_REPLICA_{i + 1}"] = f"127.0.0.1:{replica.port}"
        haproxy = subprocess.Popen([shutil.which("haproxy") or "/usr/sbin/haproxy", "-db",
                                    "-f", str(HAPROXY_CFG)], env=lb_env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stack.callback(lambda: (haproxy.terminate(), haproxy.wait(timeout=10)))
        wait_http(f"http://127.0.0.1:{lb_port}/ready", timeout=30)
        time.sleep(1.5)  # every replica passes its two first checks ("rise 2")
        yield f"http://127.0.0.1:{lb_port}", replicas


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


def call(url, key, body=None):
    """(status, JSON) of a GET, or of a POST when a body is given."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={
        "content-type": "application/json", "authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


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
