"""MCP across replicas (issue 22): on PostgreSQL `/mcp` runs stateless
(`mcp.sessions: auto`), so a client's requests may reach any replica. The
official `mcp` client's HTTP requests are spread over three replicas in turn
(initialise on one, list and call tools on the others); every request is
authenticated by its own key, so another tenant's key reaches nothing of the
first tenant's."""

import json
import os

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from harness import ADMIN_KEY, call, cluster

COVENANT = {
    "title": "Session cookies to JWT with refresh",
    "description": "Replace server-side session cookies with signed JWTs and refresh tokens.",
    "reality_state": {"description": "Login sets a session cookie backed by a session store.",
                      "key_aspects": ["session cookie"]},
    "target_state": {"description": "Login returns a JWT and a refresh token.",
                     "success_criteria": ["no session store"]},
    "owner": "platform-team",
}


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica's port, noting which served which method."""

    def __init__(self, ports):
        self.ports, self.turn, self.served = ports, 0, []
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        method = None
        if request.method == "POST":
            body = await request.aread()
            method = json.loads(body).get("method") if body else None
        self.served.append((request.method, method, port))
        request.url = request.url.copy_with(port=port)
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


def new_tenant_key(replica, name):
    status, tenant = call(f"{replica.url}/v2/admin/tenants", ADMIN_KEY, {"name": name})
    assert status == 201, tenant
    status, created = call(f"{replica.url}/v2/admin/tenants/{tenant['id']}/keys", ADMIN_KEY, {})
    assert status == 201, created
    return created["key"]


async def spread_session(replicas, key, work):
    transport = RoundRobin([r.port for r in replicas])
    async with httpx2.AsyncClient(transport=transport, timeout=30,
                                  headers={"authorization": f"Bearer {key}"}) as client:
        async with streamable_http_client(f"{replicas[0].url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await work(session)
    return result, transport.served


def test_a_client_spread_over_replicas_works_and_stays_its_tenants():
    assert os.environ.get("DATABASE_URL"), "run under scripts/with-postgres.sh"
    # HARPOON_MCP_SESSIONS (stateful) shows what a sticky-session transport would do here.
    extra = {"HARPOON__MCP__SESSIONS": os.environ["HARPOON_MCP_SESSIONS"]} \
        if os.environ.get("HARPOON_MCP_SESSIONS") else {}
    with cluster(extra, balancer=False) as (_, replicas):
        owner_key = new_tenant_key(replicas[0], "mcp-owner")
        stranger_key = new_tenant_key(replicas[1], "mcp-stranger")

        async def as_owner(session):
            for _ in range(2):  # so the tool call reaches another replica than initialize
                tools = await session.list_tools()
                assert "create_covenant" in [t.name for t in tools.tools]
            created = await session.call_tool("create_covenant", COVENANT)
            assert not created.is_error, created
            covenant_id = json.loads(created.content[0].text)["covenant_id"]
            read = await session.read_resource(f"harpoon://covenants/{covenant_id}")
            assert json.loads(read.contents[0].text)["covenant_id"] == covenant_id
            return covenant_id

        covenant_id, served = anyio.run(spread_session, replicas, owner_key, as_owner)
        ports = {method: port for _, method, port in served if method}
        print("MCP requests by replica port: " + ", ".join(f"{m}→{p}" for _, m, p in served if m))
        assert ports["initialize"] != ports["tools/call"], served
        assert len({p for _, m, p in served if m}) == 3, "every replica answered some of it"

        async def as_stranger(session):
            try:
                await session.read_resource(f"harpoon://covenants/{covenant_id}")
            except MCPError as refused:
                return str(refused)
            return None

        refused, _ = anyio.run(spread_session, replicas, stranger_key, as_stranger)
        assert refused is not None and "not found" in refused.lower(), refused
