"""MCP end to end: the real binary, the official MCP Python SDK as the client,
over Streamable HTTP (/mcp on the service port, and the dedicated listener)
and over stdio (`service mcp --stdio`)."""

import json
import logging
import tempfile

import subprocess

import anyio
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPError

from conftest import (
    MCP_KEY,
    admin,
    get,
    http_session,
    post,
    resource_json,
    stdio_session,
    tool_json,
)

PROMPTS = {"covenant.creation", "covenant.harmony_review", "strike.delegation", "fusion.hygiene"}
TOOLS = {
    "classify",
    "run",
    "process_fragments",
    "create_covenant",
    "harmony_review",
    "start_strike",
    "strike_status",
}
# docs/covenants.md's covenant: the bridge's NewCovenant, as POST /v2/covenant takes it.
COVENANT = {
    "title": "Session cookies to JWT with refresh",
    "description": "Replace server-side session cookies with signed JWTs and refresh tokens.",
    "reality_state": {
        "description": "Login sets a session cookie backed by a session store.",
        "key_aspects": ["session cookie", "session store"],
    },
    "target_state": {
        "description": "Login returns a JWT and a refresh token.",
        "success_criteria": ["no session store", "refresh rotates tokens"],
    },
    "owner": "platform-team",
}
# docs/covenants.md's strike changes: files for the anchor, a diff for the agnos.
CHANGES = [
    {"repo": "acme/auth", "title": "Issue JWTs", "files": [{"path": "src/jwt.rs", "content": "pub fn issue() {}\n"}]},
    {
        "repo": "acme/web",
        "diff": "--- a/README.md\n+++ b/README.md\n@@ -1,2 +1,3 @@\n # web\n"
        " The front end: the login page keeps the session cookie.\n+Soon: a JWT instead.\n",
    },
]
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}


async def check_catalogue(session):
    """What every transport must offer: the catalogue, readable resources,
    a rendered prompt, a working classify and a tool error for bad arguments."""
    resources = {r.uri for r in (await session.list_resources()).resources}
    assert {"harpoon://models", "harpoon://usage", "harpoon://pools", "harpoon://covenants"} <= resources
    templates = {t.uri_template for t in (await session.list_resource_templates()).resource_templates}
    assert templates == {"harpoon://covenants/{id}", "harpoon://strikes/{run_id}"}

    models = resource_json(await session.read_resource("harpoon://models"))
    ids = [m["id"] for m in models["data"]]
    assert ids[0] == "auto" and "gemma" in ids and "qwen" in ids
    assert all(isinstance(m["available"], bool) for m in models["data"])

    usage = resource_json(await session.read_resource("harpoon://usage"))
    assert usage["tenant"].startswith("ten_") and usage["group_by"] == "model"

    with pytest.raises(MCPError):
        await session.read_resource("harpoon://secrets")

    prompts = {p.name: p for p in (await session.list_prompts()).prompts}
    assert set(prompts) == PROMPTS
    required = {a.name for a in prompts["covenant.creation"].arguments if a.required}
    assert required == {"goal", "repositories"}
    prompt = await session.get_prompt(
        "covenant.creation",
        {"goal": "Rename user_id to account_id", "repositories": "acme/api, acme/web"},
    )
    text = prompt.messages[0].content.text
    assert "Rename user_id to account_id" in text and "- acme/web\n" in text
    assert "create_covenant" in text
    # A missing argument is an error, not a blank in the text.
    with pytest.raises(MCPError) as missing:
        await session.get_prompt("covenant.creation", {"goal": "x"})
    assert "repositories" in missing.value.message

    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    # `text` or `messages`, exactly one: neither is required by the schema.
    classify_schema = tools["classify"].input_schema
    assert classify_schema.get("required", []) == []
    assert {"text", "messages", "explain"} <= set(classify_schema["properties"])
    assert tools["create_covenant"].input_schema["type"] == "object"

    simple = await session.call_tool("classify", {"text": "hi there"})
    assert not simple.is_error
    assert tool_json(simple)["tier"] == "small"
    hard = await session.call_tool("classify", {"text": "Prove that there are infinitely many primes."})
    decided = tool_json(hard)
    assert (decided["category"], decided["tier"], decided["model"]) == ("complex", "large", "qwen")
    assert 0.0 <= decided["complexity"] <= 1.0
    # A conversation: a short follow-up of a hard question is large.
    follow_up = await session.call_tool("classify", {"messages": [
        {"role": "user", "content": "A bag holds 4 red and 6 green balls. I draw 3 without replacement. "
                                    "What is the probability that exactly two are green? Show the working."},
        {"role": "assistant", "content": "It is 1/2."},
        {"role": "user", "content": "ok and for 3?"},
    ]})
    assert not follow_up.is_error
    assert tool_json(follow_up)["tier"] == "large"
    both = await session.call_tool("classify", {"text": "hi", "messages": [{"role": "user", "content": "hi"}]})
    assert both.is_error

    # Bad arguments: an error result the model can read, with REST's code.
    wrong_type = await session.call_tool("classify", {"text": 5})
    assert wrong_type.is_error
    assert tool_json(wrong_type)["error"]["code"] == "validation_error"
    blank = await session.call_tool("classify", {"text": "   "})
    assert blank.is_error
    assert tool_json(blank)["error"] == {
        "code": "validation_error",
        "message": "text: must not be empty or whitespace",
        "type": "invalid_request_error",
        "param": "text",
        "status": 422,
    }
    unknown_field = await session.call_tool("classify", {"text": "hi", "colour": "red"})
    assert unknown_field.is_error and "colour" in tool_json(unknown_field)["error"]["message"]
    # No engine in this build: run answers REST's 503, never invented output.
    run = await session.call_tool("run", {"text": "Hello"})
    assert run.is_error
    assert tool_json(run)["error"]["code"] == "engine_unavailable"
    with pytest.raises(MCPError):
        await session.call_tool("no_such_tool", {})


def error_of(result):
    assert result.is_error, result
    return tool_json(result)["error"]


async def check_covenant_round_trip(session, companion=False):
    """create_covenant takes REST's body and answers REST's record; the
    resources, prompts and refusals follow the bridge. No repository needed."""
    created = await session.call_tool("create_covenant", COVENANT)
    assert not created.is_error, created
    covenant = tool_json(created)
    cov_id = covenant["covenant_id"]
    assert cov_id.startswith("cov_")
    assert covenant["slug"] == "session-cookies-to-jwt-with-refresh"
    assert covenant["metadata"] == {"owner": "platform-team"}
    assert covenant["reality_state"] == COVENANT["reality_state"]

    uri = f"harpoon://covenants/{cov_id}"
    listed = {r.uri: r for r in (await session.list_resources()).resources}
    assert listed[uri].name == "session-cookies-to-jwt-with-refresh"
    assert resource_json(await session.read_resource(uri)) == covenant
    page = resource_json(await session.read_resource("harpoon://covenants"))
    assert page["total"] >= 1 and cov_id in [c["covenant_id"] for c in page["items"]]

    # Not reviewed yet: the harmony prompt says so, delegation refuses.
    prompt = await session.get_prompt("covenant.harmony_review", {"covenant_id": cov_id})
    text = prompt.messages[0].content.text
    assert f'Covenant "Session cookies to JWT with refresh" ({cov_id}' in text
    assert "Reality state (today): Login sets a session cookie backed by a session store." in text
    assert "- refresh rotates tokens\n" in text
    assert "No harmony review is stored" in text
    with pytest.raises(MCPError) as unreviewed:
        await session.get_prompt("strike.delegation", {"covenant_id": cov_id, "repository": "acme/web"})
    assert "harmony_review" in unreviewed.value.message
    with pytest.raises(MCPError) as missing:
        await session.get_prompt("strike.delegation", {"covenant_id": cov_id})
    assert "repository" in missing.value.message
    # A covenant id naming nothing is a bad argument (-32602), not a missing
    # resource (-32002, which resources/read answers for a URI).
    with pytest.raises(MCPError) as stranger:
        await session.get_prompt("covenant.harmony_review", {"covenant_id": "cov_nope"})
    assert stranger.value.code == -32602, stranger.value

    # Refusals: REST's 422 naming the field, 404 for strangers.
    no_states = error_of(await session.call_tool("create_covenant", {"title": "x", "description": "y"}))
    assert no_states["code"] == "validation_error" and "reality_state" in no_states["message"]
    blank = error_of(await session.call_tool("create_covenant", {**COVENANT, "title": "  "}))
    assert blank == {"code": "validation_error", "message": "title: must not be empty or whitespace",
                     "type": "invalid_request_error", "param": "title", "status": 422}
    # The invented arguments of old are not the bridge's: refused, named.
    invented = error_of(await session.call_tool("start_strike", {"covenant_id": cov_id, "summary": "x"}))
    assert invented["status"] == 422 and "summary" in invented["message"]
    if companion:
        # A stdio process ends with the IDE's session: strikes run in the server.
        refused = error_of(await session.call_tool("start_strike", {"covenant_id": cov_id}))
        assert refused["status"] == 503 and refused["code"] == "strikes_run_in_the_server"
    else:
        assert error_of(await session.call_tool("start_strike", {"covenant_id": "cov_nope"}))["status"] == 404
    assert error_of(await session.call_tool("strike_status", {"run_id": "run_nope"}))["code"] == "not_found"
    with pytest.raises(MCPError):
        await session.read_resource("harpoon://strikes/run_nope")
    return cov_id


# ---- Streamable HTTP on the service port


def test_http_catalogue_resources_prompts_and_tools(open_service):
    async def main():
        async with http_session(f"{open_service.url}/mcp") as session:
            await check_catalogue(session)

    anyio.run(main)


def test_http_initialize_reports_harpoon(open_service):
    status, body = post(f"{open_service.url}/mcp", INITIALIZE)
    assert status == 200
    data = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:") and line[5:].strip()]
    result = data[-1]["result"]
    assert result["serverInfo"]["name"] == "harpoon"
    assert {"resources", "prompts", "tools"} <= set(result["capabilities"])
    assert result["capabilities"]["resources"]["subscribe"] is True
    # Without keys, only loopback Host names (DNS-rebinding guard), as JSON.
    status, body = post(f"{open_service.url}/mcp", INITIALIZE, {"host": "evil.example"})
    assert status == 403 and body["error"]["code"] == "forbidden"


def test_closing_a_session_logs_no_termination_failure(open_service, caplog):
    """The SDK client ends its session with DELETE on close and logs "Session
    termination failed" for any answer but 200 or 204."""
    answers = []

    async def record(response):
        answers.append((response.request.method, response.status_code))

    async def main():
        async with httpx2.AsyncClient(timeout=30, event_hooks={"response": [record]}) as client:
            async with streamable_http_client(f"{open_service.url}/mcp", http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await session.send_ping()

    with caplog.at_level(logging.DEBUG, logger="mcp.client.streamable_http"):
        anyio.run(main)
    assert ("DELETE", 200) in answers, answers
    failed = [r.getMessage() for r in caplog.records if "Session termination failed" in r.getMessage()]
    assert failed == []


def test_classify_over_mcp_equals_rest(open_service):
    text = "Summarise this paragraph in one sentence."
    status, rest = post(f"{open_service.url}/classify", {"text": text})
    assert status == 200
    rest = json.loads(rest)

    async def main():
        async with http_session(f"{open_service.url}/mcp") as session:
            return tool_json(await session.call_tool("classify", {"text": text}))

    mcp = anyio.run(main)
    for field in ("category", "tier", "model", "complexity"):
        assert mcp[field] == rest[field], field


# The SDK warns that resources/subscribe is gone from protocol 2026-07-28; the
# handshake versions this session negotiates still have it.
@pytest.mark.filterwarnings("ignore:resources/")
def test_subscribed_usage_notifies_its_own_tenant_only(auth_service):
    """resources/subscribe: the watcher re-reads harpoon://usage for the
    subscriber's tenant and notifies once its own new ledger row changes it;
    another tenant's traffic does not."""
    _, a_key = auth_service.tenant_key("watcher-a")
    _, b_key = auth_service.tenant_key("watcher-b")
    url = f"{auth_service.url}/mcp"
    updated = []

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/resources/updated":
            updated.append(message.params.uri)

    async def main():
        async with http_session(url, a_key, message_handler=on_message) as a:
            assert a.server_capabilities.resources.subscribe
            await a.subscribe_resource("harpoon://usage")
            with pytest.raises(MCPError):
                await a.subscribe_resource("harpoon://nothing")
            async with http_session(url, b_key) as b:
                assert (await b.call_tool("run", {"text": "Hello"})).is_error
            # Two polls later, B's row has not touched A's usage.
            await anyio.sleep(4.5)
            assert updated == []
            assert (await a.call_tool("run", {"text": "Hello"})).is_error
            with anyio.fail_after(10):
                while not updated:
                    await anyio.sleep(0.1)
            assert updated == ["harpoon://usage"]
            await a.unsubscribe_resource("harpoon://usage")

    anyio.run(main)


def test_listen_on_protocol_2026_07_28_notifies_its_own_tenant(auth_service):
    """subscriptions/listen (2026-07-28, no sessions): the same watcher, on the
    stream of the listen request."""
    _, a_key = auth_service.tenant_key("listener-a")
    url = f"{auth_service.url}/mcp"

    async def main():
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {a_key}"}, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client:
                assert client.protocol_version == "2026-07-28"
                assert tool_json(await client.call_tool("classify", {"text": "hi there"}))["tier"] == "small"
                async with client.listen(resource_subscriptions=["harpoon://usage"]) as subscription:
                    assert (await client.call_tool("run", {"text": "Hello"})).is_error
                    with anyio.fail_after(10):
                        event = await subscription.__anext__()
                    assert isinstance(event, ResourceUpdated) and event.uri == "harpoon://usage"

    anyio.run(main)


def test_http_create_covenant(open_service):
    async def main():
        async with http_session(f"{open_service.url}/mcp") as session:
            return await check_covenant_round_trip(session)

    cov_id = anyio.run(main)
    # What MCP stored is what REST reads.
    status, rest = get(f"{open_service.url}/v2/covenant/{cov_id}")
    assert status == 200 and rest["title"] == COVENANT["title"]


def test_http_harmony_review_and_strike_as_rest_does(open_service, demo_repos):
    """The whole path of docs/covenants.md over MCP: the harmony_review tool
    picks the anchor by the same code as REST, the prompts render the stored
    review and the cables, start_strike pushes real branches, strike_status
    and the strike resource equal GET /v2/strike/{run_id}."""
    url = open_service.url
    for app in ("auth", "web"):
        status, _ = post(f"{url}/v2/repos", {"name": f"acme/{app}", "url": demo_repos[app]})
        assert status == 201

    async def main():
        async with http_session(f"{url}/mcp") as session:
            cov_id = tool_json(await session.call_tool("create_covenant", COVENANT))["covenant_id"]
            review = tool_json(await session.call_tool("harmony_review", {"covenant_id": cov_id}))
            assert (review["anchor"], review["agnos"]) == ("acme/auth", ["acme/web"])
            assert [c["role"] for c in review["choices"]] == ["anchor", "agnos"]

            harmony = (await session.get_prompt("covenant.harmony_review", {"covenant_id": cov_id})).messages
            text = harmony[0].content.text
            assert "Anchor (leads): acme/auth" in text and "Agnos (follow the anchor): acme/web" in text
            auth = review["choices"][0]
            assert f"acme/auth (anchor): score {auth['score']:.2f} = 0.7 × relevance" in text
            assert "acme/web depends on acme/auth (strength 1.0, read from a manifest" in text

            delegated = await session.get_prompt(
                "strike.delegation", {"covenant_id": cov_id, "repository": "acme/web", "notes": "keep the cookie for a week"}
            )
            text = delegated.messages[0].content.text
            assert "Your repository's role: an agnos: you follow the anchor acme/auth" in text
            assert "- acme/auth (anchor)\n" in text
            assert "`harpoon/session-cookies-to-jwt-with-refresh-<run id>`" in text
            assert text.endswith("Notes from the requester: keep the cookie for a week")
            with pytest.raises(MCPError) as stranger:
                await session.get_prompt("strike.delegation", {"covenant_id": cov_id, "repository": "acme/db"})
            assert "acme/auth, acme/web" in stranger.value.message

            # A change for a repository outside the targets: the bridge's 422.
            outside = await session.call_tool(
                "start_strike",
                {"covenant_id": cov_id, "target_repos": ["acme/auth"], "changes": CHANGES},
            )
            assert error_of(outside) == {
                "code": "validation_error",
                "message": 'changes[1].repo: "acme/web" is not a target of this strike',
                "type": "invalid_request_error",
                "param": "changes[1].repo",
                "status": 422,
            }

            started = await session.call_tool("start_strike", {"covenant_id": cov_id, "changes": CHANGES})
            run_id = tool_json(started)["run_id"]
            assert run_id.startswith("run_")
            with anyio.fail_after(60):
                while True:
                    status = tool_json(await session.call_tool("strike_status", {"run_id": run_id}))
                    if status["state"] != "running":
                        break
                    await anyio.sleep(0.2)
            resource = resource_json(await session.read_resource(f"harpoon://strikes/{run_id}"))
            return run_id, status, resource

    run_id, status, resource = anyio.run(main)
    assert status["state"] == "done", status
    assert [(r["repo"], r["role"], r["phase"]) for r in status["repos"]] == [
        ("acme/auth", "anchor", "done"),
        ("acme/web", "agnos", "done"),
    ]
    code, rest = get(f"{url}/v2/strike/{run_id}")
    assert code == 200 and rest == status == resource
    # The branch really is on the remote, with the given title as its commit.
    branch = status["repos"][0]["branch"]
    assert branch.startswith("harpoon/session-cookies-to-jwt-with-refresh-")
    bare = demo_repos["auth"].removeprefix("file://")
    log = subprocess.run(["git", "-C", bare, "log", "--format=%s", "-1", branch], capture_output=True, text=True, check=True)
    assert log.stdout.strip() == "Issue JWTs"


# ---- fusion: the same functions as POST /v2/fragments

FRAGMENTS = {
    "fragments": [
        {"path": "src/add.py", "lines": "1-2", "body": "def add(a, b):\n    return a + b\n"},
        {"path": "src/log.py", "body": "def f(x):\n    print('debug', x)  # TODO remove\n    return x   \n"},
        {"path": "src/again.py", "body": "def add(a, b):\n    return a + b\n"},
    ],
    "hygiene_threshold": 0.95,
    "max_iterations": 2,
}


def rest_fragments(url, body):
    status, raw = post(f"{url}/v2/fragments", body)
    return status, (json.loads(raw) if status == 200 else raw)


def test_process_fragments_equals_rest(open_service):
    url = open_service.url
    status, rest = rest_fragments(url, FRAGMENTS)
    assert status == 200

    async def main():
        async with http_session(f"{url}/mcp") as session:
            envelope = tool_json(await session.call_tool("process_fragments", FRAGMENTS))
            out_of_range = error_of(await session.call_tool("process_fragments", {**FRAGMENTS, "hygiene_threshold": 2}))
            empty = error_of(await session.call_tool("process_fragments", {"fragments": []}))
            blank = error_of(await session.call_tool("process_fragments", {"fragments": [{"body": "  "}]}))
            too_many = error_of(
                await session.call_tool("process_fragments", {"fragments": [{"body": f"x = {i}\n"} for i in range(257)]})
            )
            return envelope, out_of_range, empty, blank, too_many

    envelope, out_of_range, empty, blank, too_many = anyio.run(main)
    # Deterministic engine, same path: the very same envelope.
    assert envelope == rest
    assert len(envelope["duplicates"]) == 1 and envelope["envelope_hash"]
    # Refusals carry REST's status, code and message.
    for mcp_error, body in [
        (out_of_range, {**FRAGMENTS, "hygiene_threshold": 2}),
        (empty, {"fragments": []}),
        (blank, {"fragments": [{"body": "  "}]}),
    ]:
        status, rest_error = rest_fragments(url, body)
        assert mcp_error == {**rest_error["error"], "status": status}
        assert status == 422
    assert too_many["status"] == 413 and too_many["code"] == "too_many_fragments"


def test_fusion_hygiene_prompt_renders_the_measured_score(open_service):
    code = FRAGMENTS["fragments"][1]["body"]
    # REST's score of the same fragment, unrefined (threshold 0, no rounds).
    status, rest = rest_fragments(
        open_service.url,
        {"fragments": [{"path": "src/log.py", "body": code}], "hygiene_threshold": 0, "max_iterations": 0},
    )
    assert status == 200
    hygiene = rest["absorbed"][0]["hygiene"]
    assert hygiene["score"] < 1.0
    worst = max(hygiene["signals"], key=lambda s: s["contribution"])

    async def main():
        async with http_session(f"{open_service.url}/mcp") as session:
            prompt = await session.get_prompt("fusion.hygiene", {"path": "src/log.py", "code": code})
            with pytest.raises(MCPError) as missing:
                await session.get_prompt("fusion.hygiene", {"path": "src/log.py"})
            assert "code" in missing.value.message
            return prompt.messages[0].content.text

    text = anyio.run(main)
    assert f"as {hygiene['language']} and scored its hygiene {hygiene['score']:.2f}" in text
    assert f"- {worst['name']}: measured" in text
    assert text.index(f"- {worst['name']}:") < text.index("Signals that cost nothing")
    assert code in text


# ---- hosted·ai pools: the same function as GET /v2/pools


def test_pools_resource_equals_rest(hosted_service):
    async def main():
        async with http_session(f"{hosted_service.url}/mcp") as session:
            return resource_json(await session.read_resource("harpoon://pools"))

    mcp = anyio.run(main)
    status, rest = get(f"{hosted_service.url}/v2/pools")
    assert status == 200
    # The emulator's one pool, as the manager listed it from the panel.
    assert mcp["team_id"] == "team-1"
    [pool] = mcp["pools"]
    # The team-scope pool listing carries no sharing ratio (docs/hosted-ai.md).
    assert (pool["id"], pool["name"], pool["gpu_model"], pool["sharing_ratio"]) == ("1", "h100-a", "H100", None)
    assert pool["free_vgpus"] == 2 and mcp["last_refresh_error"] is None
    for field in ("team_id", "overcommit", "pools", "subscriptions", "models", "panel_breaker", "shutting_down"):
        assert mcp[field] == rest[field], field


def test_pools_without_hosted_ai_is_restful_503(open_service):
    status, rest = get(f"{open_service.url}/v2/pools")
    assert status == 503

    async def main():
        async with http_session(f"{open_service.url}/mcp") as session:
            with pytest.raises(MCPError) as refused:
                await session.read_resource("harpoon://pools")
            return refused.value

    refused = anyio.run(main)
    assert refused.data["error"] == {**rest["error"], "status": 503}
    assert rest["error"]["code"] == "hosted_ai_not_configured"


def test_stdio_pools_are_left_to_the_server():
    """A companion stdio process never runs the pool manager (the server holds
    the team's subscriptions), and says so rather than 'not configured'."""
    data = tempfile.mkdtemp(prefix="harpoon-mcp-stdio-")
    hosted = {"HOSTED_AI_BASE_URL": "http://127.0.0.1:9/api", "HOSTED_AI_API_KEY": "k", "HOSTED_AI_TEAM_ID": "t"}
    with tempfile.TemporaryFile("w+") as errlog:

        async def main():
            async with stdio_session(data, errlog, env=hosted) as session:
                with pytest.raises(MCPError) as refused:
                    await session.read_resource("harpoon://pools")
                return refused.value

        refused = anyio.run(main)
    assert refused.data["error"]["code"] == "hosted_ai_not_managed_here"
    assert refused.data["error"]["status"] == 503


# ---- stdio


def test_stdio_catalogue_resources_prompts_and_tools():
    data = tempfile.mkdtemp(prefix="harpoon-mcp-stdio-")
    with tempfile.TemporaryFile("w+") as errlog:

        async def main():
            async with stdio_session(data, errlog) as session:
                await check_catalogue(session)

        anyio.run(main)
        errlog.seek(0)
        logs = errlog.read()
    # Logs went to stderr (stdout carries the protocol, which parsed cleanly).
    assert "serving MCP on stdio" in logs


def test_stdio_unknown_tenant_fails_on_stderr():
    import subprocess

    from conftest import BINARY, base_env

    data = tempfile.mkdtemp(prefix="harpoon-mcp-stdio-")
    out = subprocess.run(
        [str(BINARY), "mcp", "--stdio", "--tenant", "nobody"],
        env=base_env(data),
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0
    assert out.stdout == ""
    assert "nobody" in out.stderr


def test_stdio_create_covenant():
    data = tempfile.mkdtemp(prefix="harpoon-mcp-stdio-")
    with tempfile.TemporaryFile("w+") as errlog:

        async def main():
            async with stdio_session(data, errlog) as session:
                await check_covenant_round_trip(session, companion=True)

        anyio.run(main)


# ---- authentication and tenant scoping


def test_http_without_key_is_refused_when_auth_is_required(auth_service):
    status, body = post(f"{auth_service.url}/mcp", INITIALIZE)
    assert status == 401
    assert body["error"]["code"] == "missing_api_key"
    status, body = post(f"{auth_service.url}/mcp", INITIALIZE, {"authorization": "Bearer hk_wrong"})
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"

    async def main():
        async with http_session(f"{auth_service.url}/mcp"):
            pass

    # The SDK surfaces the refused POST as an MCP error inside its task groups.
    with pytest.raises(ExceptionGroup) as refused:
        anyio.run(main)
    assert refused.group_contains(MCPError)


def test_dedicated_listener_needs_the_mcp_key(auth_service):
    url = auth_service.mcp_url
    status, body = post(url, INITIALIZE)
    assert status == 401 and body["error"]["code"] == "invalid_mcp_key"
    status, body = post(url, INITIALIZE, {"x-api-key": "not-the-key"})
    assert status == 401 and body["error"]["code"] == "invalid_mcp_key"
    # A tenant key is not the listener's key.
    _, tenant_key = auth_service.tenant_key("listener-probe")
    status, _ = post(url, INITIALIZE, {"authorization": f"Bearer {tenant_key}"})
    assert status == 401

    async def main():
        async with http_session(url, MCP_KEY) as session:
            await check_catalogue(session)

    anyio.run(main)


def test_dedicated_listener_refuses_while_its_tenant_is_suspended(auth_service):
    url, base = auth_service.mcp_url, auth_service.url
    # An admin of another tenant: the local tenant's own keys stop with it.
    admin(auth_service.data_dir, "tenant", "create", "ops")
    admin_key = admin(auth_service.data_dir, "key", "create", "--tenant", "ops", "--scope", "admin")["key"]
    headers = {"authorization": f"Bearer {admin_key}"}
    status, _ = post(url, INITIALIZE, {"x-api-key": MCP_KEY})
    assert status == 200
    status, body = post(f"{base}/v2/admin/tenants/local/suspend", {}, headers)
    assert status == 200, body
    try:
        status, body = post(url, INITIALIZE, {"x-api-key": MCP_KEY})
        assert status == 403 and body["error"]["code"] == "tenant_suspended", body
    finally:
        status, body = post(f"{base}/v2/admin/tenants/local/activate", {}, headers)
        assert status == 200, body
    status, _ = post(url, INITIALIZE, {"x-api-key": MCP_KEY})
    assert status == 200


def test_each_tenant_sees_only_its_own_usage(auth_service):
    a_id, a_key = auth_service.tenant_key("tenant-a")
    b_id, b_key = auth_service.tenant_key("tenant-b")

    async def main():
        async with http_session(f"{auth_service.url}/mcp", a_key) as a:
            # A failed run is still a ledger row (status 503), for A only.
            assert (await a.call_tool("run", {"text": "Hello"})).is_error
            # The ledger is written in batches: wait for the row.
            for _ in range(100):
                usage_a = resource_json(await a.read_resource("harpoon://usage"))
                if usage_a["groups"]:
                    break
                await anyio.sleep(0.05)
        async with http_session(f"{auth_service.url}/mcp", b_key) as b:
            usage_b = resource_json(await b.read_resource("harpoon://usage"))
        return usage_a, usage_b

    usage_a, usage_b = anyio.run(main)
    assert usage_a["tenant"] == a_id and usage_b["tenant"] == b_id
    assert [(g["requests"], g["errors"]) for g in usage_a["groups"]] == [(1, 1)]
    assert usage_b["groups"] == []


def test_tenant_a_covenant_is_not_listed_for_tenant_b(auth_service):
    _, a_key = auth_service.tenant_key("cov-a")
    _, b_key = auth_service.tenant_key("cov-b")

    async def main():
        async with http_session(f"{auth_service.url}/mcp", a_key) as a:
            covenant_id = await check_covenant_round_trip(a)
        async with http_session(f"{auth_service.url}/mcp", b_key) as b:
            listed = {r.uri for r in (await b.list_resources()).resources}
            assert f"harpoon://covenants/{covenant_id}" not in listed
            assert covenant_id not in json.dumps(resource_json(await b.read_resource("harpoon://covenants")))
            with pytest.raises(MCPError):
                await b.read_resource(f"harpoon://covenants/{covenant_id}")

    anyio.run(main)
