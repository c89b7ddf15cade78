"""Every answer of the gateway's OpenAI-compatible routes checked against the
official OpenAI schemas (tests/fixtures/openai-schemas.json), whoever made
the request: the helpers of tests/e2e/conftest.py and the `openai` clients
the tests build call `check` on each response they get.
"""

import copy
import json
import re

from openai_schema import sse_events, validate, validate_response_events, validate_sse

MODEL_PATH = re.compile(r"/v1/models/[^/]+$")
RESPONSE_PATH = re.compile(r"/v1/responses/[^/]+$")


def schema_for(method, path, status):
    """The schema an answer to `method path` with `status` must meet, or None."""
    if not path.startswith("/v1/"):
        return None
    if status >= 400:
        return "ErrorResponse"
    if method == "POST" and path == "/v1/chat/completions":
        return "CreateChatCompletionResponse"
    if method == "POST" and path == "/v1/embeddings":
        return "CreateEmbeddingResponse"
    if method == "POST" and path == "/v1/completions":
        return "CreateCompletionResponse"
    if method == "GET" and path == "/v1/models":
        return "ListModelsResponse"
    if method == "GET" and MODEL_PATH.search(path):
        return "Model"
    if (method == "POST" and path == "/v1/responses") or (
            method == "GET" and RESPONSE_PATH.search(path)):
        return "Response"
    return None


def completion_chunks(text):
    """A streamed legacy completion: OpenAI's document has no chunk schema for
    it and says the stream carries CreateCompletionResponse objects, but
    OpenAI's own chunks say `finish_reason: null` until the last. Each chunk
    is checked as a CreateCompletionResponse with that one difference; the
    stream ends with `[DONE]`, and an `error` event is an ErrorResponse."""
    events = sse_events(text)
    assert events and events[-1] == "[DONE]", f"the stream does not end with [DONE]: {text[-200:]!r}"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        if "error" in chunk:
            validate("ErrorResponse", chunk)
            continue
        checked = copy.deepcopy(chunk)
        for choice in checked.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason") is None:
                choice["finish_reason"] = "stop"
        validate("CreateCompletionResponse", checked)
    return chunks


def check(method, path, status, content_type, text):
    """Validates one answer; returns how many bodies (or stream chunks) it checked."""
    schema = schema_for(method, path, status)
    if schema is None:
        return 0
    if content_type.startswith("text/event-stream"):
        if schema == "Response":
            return len(validate_response_events(text))
        if schema == "CreateCompletionResponse":
            return len(completion_chunks(text))
        return len(validate_sse(text))
    validate(schema, json.loads(text))
    return 1


def httpx_hook(response):
    """An `event_hooks={"response": [...]}` hook for the SDK's HTTP client:
    reads each answer (streams included, whole) and validates it."""
    request = response.request
    response.read()
    check(request.method, request.url.path, response.status_code,
          response.headers.get("content-type", ""), response.text)
