"""What the cluster tests share: replicas of the debug build on fixed
ports (restartable with the same state, killable), started together on one
PostgreSQL (scripts/with-postgres.sh sets DATABASE_URL), Debian's HAProxy with
the shipped configuration in front, and a small HTTP helper. Every process
runs on 127.0.0.1 and is stopped by its PID."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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

    def kill(self):
        """SIGKILL: the replica dies without releasing or handing over anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def cluster(extra_env=None, balancer=True, standin_models=True, upstream_delay=0.0):
    """Three replicas on one database with the OpenAI stand-in as their models
    (unless not `standin_models`; holding each answer `upstream_delay` s) and
    `extra_env` on top, behind HAProxy when `balancer`; yields the balancer's
    URL (None without) and the replicas."""
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
        env.update(extra_env or {})
        for model in ("GEMMA", "QWEN") if standin_models else ():
            env[f"HARPOON__MODELS__{model}__ENGINE"] = "openai"
            env[f"HARPOON__MODELS__{model}__BASE_URL"] = upstream
            env[f"HARPOON__MODELS__{model}__SERVED_MODEL"] = DEFAULT_MODELS[0]
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
        if not balancer:
            yield None, replicas
            return
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


@contextmanager
def running(args, ready_url, env=None, timeout=120, log=None):
    """A helper process (stopped by its PID on exit), once `ready_url` answers;
    its output goes to the file `log` (or nowhere)."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(ready_url, timeout=timeout)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if log:
            out.close()


def call(url, key, body=None, timeout=10):
    """(status, JSON) of a GET, or of a POST when a body is given."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={
        "content-type": "application/json", "authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
