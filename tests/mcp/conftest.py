"""Fixtures: the real `service` binary, started on 127.0.0.1 and stopped by PID,
and helpers that drive it with the official MCP Python SDK (`mcp`).

No model engine is needed: classification, resources and prompts answer
without one, and inference answers its real 503.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from harpoon_http import free_port, wait_http  # noqa: E402  (shared with the other suite)
BINARY = Path(os.environ.get("HARPOON_SERVICE_BIN", ROOT / "target" / "debug" / "service"))
MCP_KEY = "mcp-shared-secret-for-tests"


def post(url, body, headers=None):
    """POST JSON; returns (status, parsed body or None)."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def base_env(data_dir):
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(ROOT / "target" / "mcp-home"),
        "HARPOON__STORAGE__DATA_DIR": data_dir,
        "RUST_LOG": "warn",
    }


def admin(data_dir, *args):
    """`service admin …` on the same data directory; its JSON output."""
    out = subprocess.run(
        [str(BINARY), "admin", *args],
        env=base_env(data_dir),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


class Service:
    def __init__(self, url, data_dir, mcp_url=None):
        self.url = url
        self.data_dir = data_dir
        self.mcp_url = mcp_url

    def tenant_key(self, name):
        """A new tenant and a key for it: (tenant id, key)."""
        tenant = admin(self.data_dir, "tenant", "create", name)
        key = admin(self.data_dir, "key", "create", "--tenant", name)
        return tenant["id"], key["key"]


@contextmanager
def running_service(env):
    assert BINARY.is_file(), f"{BINARY} is missing: `make mcp` builds it"
    port = free_port()
    data = tempfile.mkdtemp(prefix="harpoon-mcp-")
    full = {**base_env(data), "SERVICE_PORT": str(port), **env(data)}
    proc = subprocess.Popen([str(BINARY)], env=full)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        mcp_port = full.get("MCP_WS_PORT")
        yield Service(
            f"http://127.0.0.1:{port}",
            data,
            f"http://127.0.0.1:{mcp_port}/mcp" if mcp_port else None,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def open_service():
    """Loopback bind: auth is off and everything runs as the local tenant.
    Local git remotes are allowed, for the strike tests' demo repositories."""
    with running_service(lambda _data: {"HARPOON__BRIDGE__ALLOW_LOCAL_REMOTES": "true"}) as service:
        yield service


def git(*args, cwd=None):
    subprocess.run(
        ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={"PATH": os.environ.get("PATH", ""), "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": tempfile.gettempdir()},
    )


@pytest.fixture(scope="module")
def demo_repos():
    """docs/covenants.md's two repositories with bare remotes: `auth` publishes
    the `auth-core` package, `web` depends on it. Yields {app: file URL}."""
    demo = Path(tempfile.mkdtemp(prefix="harpoon-mcp-demo-"))
    files = {
        "auth": {
            "README.md": "# auth\nIssues session cookies at login; sessions live in a session store.\n",
            "Cargo.toml": '[package]\nname = "auth-core"\nversion = "0.1.0"\n',
        },
        "web": {
            "README.md": "# web\nThe front end: the login page keeps the session cookie.\n",
            "package.json": '{"name": "web", "dependencies": {"auth-core": "^0.1"}}\n',
        },
    }
    urls = {}
    for app, content in files.items():
        bare, work = demo / f"{app}.git", demo / app
        git("init", "-q", "--bare", "-b", "main", str(bare))
        git("init", "-q", "-b", "main", str(work))
        for name, text in content.items():
            (work / name).write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-qm", "initial", cwd=work)
        git("push", "-q", f"file://{bare}", "main", cwd=work)
        urls[app] = f"file://{bare}"
    try:
        yield urls
    finally:
        shutil.rmtree(demo, ignore_errors=True)


def get(url, headers=None):
    """GET JSON; returns (status, parsed body)."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def auth_service():
    """API keys required on the service port; the dedicated MCP listener
    enabled and guarded by MCP_API_KEY."""
    mcp_port = free_port()
    env = lambda _data: {  # noqa: E731
        "HARPOON__AUTH__MODE": "required",
        "HARPOON__MCP__ENABLED": "true",
        "MCP_WS_HOST": "127.0.0.1",
        "MCP_WS_PORT": str(mcp_port),
        "MCP_API_KEY": MCP_KEY,
    }
    with running_service(env) as service:
        wait_http(f"{service.url}/health")
        yield service


@asynccontextmanager
async def http_session(url, key=None, message_handler=None):
    """An initialised MCP session over Streamable HTTP."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write, message_handler=message_handler) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def stdio_session(data_dir, errlog, *args, env=None):
    """An initialised MCP session with `service mcp --stdio` as a child process."""
    params = StdioServerParameters(
        command=str(BINARY),
        args=["mcp", "--stdio", *args],
        env={**base_env(data_dir), "RUST_LOG": "info", **(env or {})},
    )
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def tool_json(result):
    """The JSON a tool answered with (its one text block)."""
    assert len(result.content) == 1, result
    return json.loads(result.content[0].text)


def resource_json(result):
    assert len(result.contents) == 1, result
    assert result.contents[0].mime_type == "application/json"
    return json.loads(result.contents[0].text)


EMULATOR = BINARY.parent / "hostedai-emulator"


def wait_tcp(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture(scope="module")
def hosted_service():
    """The service managing the hosted·ai emulator's pools (test support: the
    documented user-panel API, its default pool `h100-a`, team `team-1`)."""
    assert EMULATOR.is_file(), f"{EMULATOR} is missing: `make mcp` builds it"
    port = free_port()
    emulator = subprocess.Popen(
        [str(EMULATOR), "--listen", f"127.0.0.1:{port}"],
        env={"PATH": os.environ.get("PATH", "")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_tcp(port)
        env = lambda _data: {  # noqa: E731
            "HOSTED_AI_BASE_URL": f"http://127.0.0.1:{port}/api",
            "HOSTED_AI_API_KEY": "key-1",
            "HOSTED_AI_TEAM_ID": "team-1",
        }
        with running_service(env) as service:
            yield service
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
