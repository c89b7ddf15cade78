"""Strikes across replicas (issue 22): each running strike has its replica as
owner and a lease that replica renews; only a strike whose lease expired is
marked interrupted, and any replica may then resume it; cancel reaches a
strike from any replica.

Real git repositories: bare remotes on file:// URLs, each with a pre-receive
hook that holds a push while a flag file exists, so a strike stays in its
push step as long as the test wants. The first push a remote receives is
refused once released (it is the killed replica's orphaned push, which must
not race the resumed one); later pushes pass."""

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from harness import ADMIN_KEY, call, cluster

LEASE_SECS = 3
COVENANT = {
    "title": "Session cookies to JWT with refresh",
    "description": "Replace server-side session cookies with signed JWTs and refresh tokens.",
    "reality_state": {"description": "Login sets a session cookie backed by a session store.",
                      "key_aspects": ["session cookie"]},
    "target_state": {"description": "Login returns a JWT and a refresh token.",
                     "success_criteria": ["no session store"]},
    "owner": "platform-team",
}
HOOK = """#!/bin/sh
# Hold the push while {flag} exists (at most 60 s); refuse the first push.
touch '{arrived}'
cat >/dev/null
i=0
while [ -e '{flag}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
if [ ! -e '{entered}' ]; then touch '{entered}'; exit 1; fi
exit 0
"""


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def held_remote(root, name):
    """A bare remote whose pushes wait on `flag`; `arrived` appears when a push reaches the hook."""
    bare, work = root / f"{name}.git", root / name
    flag, arrived, entered = root / f"{name}.hold", root / f"{name}.arrived", root / f"{name}.entered"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("init", "-q", "-b", "main", str(work))
    (work / "README.md").write_text(f"# {name}\n")
    git("add", "-A", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "initial", cwd=work)
    git("push", "-q", f"file://{bare}", "main", cwd=work)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(HOOK.format(flag=flag, arrived=arrived, entered=entered))
    hook.chmod(0o755)
    flag.touch()
    return f"file://{bare}", flag, arrived


def strike_state(replica, run_id):
    status, body = call(f"{replica.url}/v2/strike/{run_id}", ADMIN_KEY)
    assert status == 200, body
    return body["state"]


def events(replica, run_id, limit=60):
    """The `progress` events of GET /v2/strike/{run_id}/events until the stream ends."""
    req = urllib.request.Request(f"{replica.url}/v2/strike/{run_id}/events",
                                 headers={"authorization": f"Bearer {ADMIN_KEY}"})
    found, kind = [], None
    with urllib.request.urlopen(req, timeout=limit) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "progress":
                found.append(json.loads(line.split(":", 1)[1]))
    return found


def wait_for(what, predicate, limit):
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {limit} s"
        time.sleep(0.1)


def test_only_a_dead_replicas_strike_is_interrupted_and_cancel_works_from_anywhere(tmp_path):
    remotes = {name: held_remote(tmp_path, name) for name in ("a", "b")}
    env = {"HARPOON__BRIDGE__ALLOW_LOCAL_REMOTES": "true",
           "HARPOON__CLUSTER__LEASE_SECS": str(LEASE_SECS)}
    with cluster(env, balancer=False) as (_, replicas):
        first, second, third = replicas
        for name, (url, _, _) in remotes.items():
            status, body = call(f"{first.url}/v2/repos", ADMIN_KEY, {"name": f"acme/{name}", "url": url})
            assert status == 201, body
        status, covenant = call(f"{first.url}/v2/covenant", ADMIN_KEY, COVENANT)
        assert status == 201, covenant
        runs = {}
        for name, replica in (("a", first), ("b", second)):
            change = {"repo": f"acme/{name}", "title": "Issue JWTs",
                      "files": [{"path": "src/jwt.rs", "content": "pub fn issue() {}\n"}]}
            status, started = call(f"{replica.url}/v2/strike", ADMIN_KEY, {
                "covenant_id": covenant["covenant_id"], "target_repos": [f"acme/{name}"],
                "changes": [change]})
            assert status < 300, started
            runs[name] = started["run_id"]
        for name, (_, _, arrived) in remotes.items():
            wait_for(f"strike {name} pushing", arrived.exists, 60)

        # A replica restarting meanwhile leaves both live strikes running.
        assert third.terminate_and_wait(limit=20) == 0
        third.start()
        assert [strike_state(third, runs[n]) for n in ("a", "b")] == ["running", "running"]

        # SIGKILL the replica running strike a: interrupted once its lease expired.
        first.kill()
        killed = time.monotonic()
        while strike_state(second, runs["a"]) == "running":
            assert strike_state(second, runs["b"]) == "running", "a live replica's strike"
            assert time.monotonic() - killed < LEASE_SECS * 3, "never marked interrupted"
            time.sleep(0.1)
        took = time.monotonic() - killed
        assert strike_state(second, runs["a"]) == "interrupted"
        print(f"strike of the SIGKILLed replica marked interrupted after {took:.2f} s "
              f"(lease {LEASE_SECS} s, renewed every {LEASE_SECS / 3:.0f} s)")
        # Its last renewal was at most a renewal period (a third of the lease,
        # checked every 0.5 s) before the kill.
        assert took >= LEASE_SECS - (LEASE_SECS / 3 + 0.5) - 0.1, "marked before its lease can have expired"
        assert took <= LEASE_SECS + LEASE_SECS / 3 + 1.5
        assert strike_state(third, runs["b"]) == "running"

        # Resumed through another replica, it completes.
        remotes["a"][1].unlink()
        status, body = call(f"{third.url}/v2/strike/{runs['a']}/resume", ADMIN_KEY, {})
        assert status < 300, body
        # Its progress, followed through a replica that does not run it, ends with the strike.
        progress = events(second, runs["a"])
        assert progress[-1]["repo"] is None and progress[-1]["phase"] == "done", progress
        assert ("acme/a", "done") in [(e["repo"], e["phase"]) for e in progress], progress
        status, done = call(f"{second.url}/v2/strike/{runs['a']}", ADMIN_KEY)
        assert done["state"] == "done", done
        assert strike_state(second, runs["b"]) == "running"

        # Cancel strike b (running on the second replica) through the third.
        status, body = call(f"{third.url}/v2/strike/{runs['b']}/cancel", ADMIN_KEY, {})
        assert status == 202, body
        asked = time.monotonic()
        wait_for("cancelled", lambda: strike_state(third, runs["b"]) != "running", 10)
        status, cancelled = call(f"{third.url}/v2/strike/{runs['b']}", ADMIN_KEY)
        print(f"cancel through another replica: strike stopped after {time.monotonic() - asked:.2f} s")
        assert cancelled["state"] == "cancelled", cancelled
        remotes["b"][1].unlink()
