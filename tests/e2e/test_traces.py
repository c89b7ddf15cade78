"""OpenTelemetry traces (issue 23), received by a real OTLP/HTTP receiver
(tests/e2e/otlp_receiver.py, on the official `opentelemetry-proto`
messages): a chat, whole and streamed, through the OpenAI peer continues the
caller's W3C trace; its span tree is request → auth, quota, routing, engine
(and stream, which ends after the last chunk); the request span carries the
GenAI attributes with the answer's own token counts; no conversation text
leaves unless `telemetry.capture_content`, and then redacted. Spans are sent
at shutdown (the batch delay is set far beyond the test), and with tracing
off no connection is made to the receiver at all."""

import json
import os
import secrets
import time

import openai
import pytest

from conftest import running_service
from openai_peer import ANSWER, running_openai_peer
from otlp_receiver import running_receiver

SECRET = "alice.secret@example.com"
PROMPT = f"Remember the word zebracorn and mail {SECRET} please"


def traceparent():
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-01"


def peer_env(peer):
    return {
        "HARPOON__MODELS__GPT__ENGINE": "openai",
        "HARPOON__MODELS__GPT__REPO": "openai/gpt-4o-mini",
        "HARPOON__MODELS__GPT__BASE_URL": peer,
        "HARPOON__MODELS__GPT__SERVED_MODEL": "gpt-4o-mini",
        # Only the shutdown flush can deliver the spans then.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }


def chats(base):
    """A whole and a streamed chat, each with its own traceparent; what the
    client saw of each."""
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": PROMPT}]
    whole_trace = traceparent()
    whole = client.chat.completions.create(
        model="gpt", messages=messages, max_tokens=7, temperature=0.5,
        extra_headers={"traceparent": whole_trace[2]})
    stream_trace = traceparent()
    first_chunk_ns = None
    chunks = []
    for chunk in client.chat.completions.create(
            model="gpt", messages=messages, max_tokens=9, stream=True,
            stream_options={"include_usage": True},
            extra_headers={"traceparent": stream_trace[2]}):
        if first_chunk_ns is None:
            first_chunk_ns = time.time_ns()
        chunks.append(chunk)
    return {"whole": (whole_trace, whole), "stream": (stream_trace, chunks, first_chunk_ns)}


def traced_run(receiver, extra_env):
    with running_openai_peer() as peer:
        with running_service({**peer_env(peer), **extra_env}) as base:
            seen = chats(base)
            before_shutdown = len(receiver.spans())
    return seen, before_shutdown


def tree(spans, trace_id):
    """The request span of `trace_id` and its children by name."""
    mine = [s for s in spans if s["trace_id"] == trace_id]
    (request,) = [s for s in mine if s["name"] == "request"]
    children = {}
    for s in mine:
        if s["parent_span_id"] == request["span_id"]:
            children.setdefault(s["name"], []).append(s)
    return request, children


@pytest.fixture(scope="module")
def receiver():
    with running_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def default_run(receiver):
    # The standard variable alone turns traces on.
    seen, before = traced_run(receiver, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    return seen, before, receiver.spans(), list(receiver.bodies)


def test_spans_are_sent_at_shutdown_in_the_callers_trace(default_run):
    seen, before_shutdown, spans, _ = default_run
    assert before_shutdown == 0, "the batch delay is 10 minutes: only the shutdown flush sends"
    for key in ("whole", "stream"):
        (trace_id, parent_id, _) = seen[key][0]
        request, _ = tree(spans, trace_id)
        assert request["parent_span_id"] == parent_id
        assert request["resource"]["service.name"] == "harpoon"
        assert request["attributes"]["http.route"] == "/v1/chat/completions"
        assert request["attributes"]["http.response.status_code"] == 200


def test_whole_chat_span_tree_and_genai_attributes(default_run):
    seen, _, spans, _ = default_run
    (trace_id, _, _), whole = seen["whole"]
    request, children = tree(spans, trace_id)
    assert {"auth", "quota", "routing", "engine"} <= set(children), children.keys()
    assert "stream" not in children
    a = request["attributes"]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "gpt" and a["gen_ai.response.model"] == "gpt"
    assert a["gen_ai.usage.input_tokens"] == whole.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == whole.usage.completion_tokens > 0
    assert a["gen_ai.response.finish_reasons"] == [whole.choices[0].finish_reason]
    assert a["gen_ai.request.max_tokens"] == 7 and a["gen_ai.request.temperature"] == 0.5
    (engine,) = children["engine"]
    assert engine["attributes"]["gen_ai.request.model"] == "gpt"
    assert engine["attributes"]["harpoon.engine"] == "openai"
    assert engine["attributes"]["harpoon.deployment"] == "gpt/openai"
    assert engine["attributes"]["harpoon.fallback"] is False
    (routing,) = children["routing"]
    assert routing["attributes"]["harpoon.model"] == "gpt"
    assert routing["attributes"]["harpoon.routed"] is False


def test_streamed_chat_has_a_stream_span_to_the_last_chunk(default_run):
    seen, _, spans, _ = default_run
    (trace_id, _, _), chunks, first_chunk_ns = seen["stream"]
    request, children = tree(spans, trace_id)
    assert {"auth", "quota", "routing", "engine", "stream"} <= set(children), children.keys()
    (stream,), (engine,) = children["stream"], children["engine"]
    # It outlives the response headers (sent once the first chunk was in)
    # and the engine call, and ends before the request does.
    headers_ns = request["start"] + request["attributes"]["latency_ms"] * 1e6
    assert stream["end"] > headers_ns and stream["end"] >= engine["end"]
    assert request["end"] >= stream["end"] and first_chunk_ns is not None
    usage = chunks[-1].usage
    a = request["attributes"]
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens > 0
    assert a["gen_ai.request.max_tokens"] == 9


def test_no_conversation_text_leaves_by_default(default_run):
    _, _, spans, bodies = default_run
    raw = b"".join(bodies)
    assert raw, "spans were received"
    for text in ("zebracorn", SECRET, "alice", ANSWER):
        assert text.encode() not in raw
    assert not any("gen_ai.input.messages" in s["attributes"] for s in spans)


def test_capture_content_puts_redacted_text_on_the_span(receiver):
    seen, _ = traced_run(receiver, {
        "HARPOON__TELEMETRY__OTLP_ENDPOINT": receiver.endpoint,
        "HARPOON__TELEMETRY__CAPTURE_CONTENT": "true",
    })
    spans = receiver.spans()
    answered = {
        "whole": seen["whole"][1].choices[0].message.content,
        "stream": "".join(c.choices[0].delta.content or "" for c in seen["stream"][1] if c.choices),
    }
    for key in ("whole", "stream"):
        (trace_id, _, _) = seen[key][0]
        request, _ = tree(spans, trace_id)
        inputs = json.loads(request["attributes"]["gen_ai.input.messages"])
        text = inputs[0]["parts"][0]["content"]
        assert inputs[0]["role"] == "user"
        assert "zebracorn" in text and SECRET not in text and "[email]" in text
        outputs = json.loads(request["attributes"]["gen_ai.output.messages"])
        assert outputs[0]["role"] == "assistant"
        assert outputs[0]["parts"][0]["content"] == answered[key] != ""
    assert SECRET.encode() not in b"".join(receiver.bodies)


def test_tracing_off_makes_no_connection(receiver):
    before = receiver.connections
    # A traceparent alone turns nothing on.
    with running_openai_peer() as peer:
        with running_service(peer_env(peer)) as base:
            chats(base)
    time.sleep(0.5)
    assert receiver.connections == before
