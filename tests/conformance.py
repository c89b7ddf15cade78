"""Every answer of the gateway's OpenAI-compatible routes checked against the
official OpenAI schemas (tests/fixtures/openai-schemas.json), whoever made
the request: the helpers of tests/e2e/conftest.py and the `openai` clients
the tests build call `check` on each response they get.
"""

import json
import re

from openai_schema import validate, validate_response_events, validate_sse

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
    if method == "GET" and path == "/v1/models":
        return "ListModelsResponse"
    if method == "GET" and MODEL_PATH.search(path):
        return "Model"
    if (method == "POST" and path == "/v1/responses") or (
            method == "GET" and RESPONSE_PATH.search(path)):
        return "Response"
    return None


def check(method, path, status, content_type, text):
    """Validates one answer; returns how many bodies (or stream chunks) it checked."""
    schema = schema_for(method, path, status)
    if schema is None:
        return 0
    if content_type.startswith("text/event-stream"):
        if schema == "Response":
            return len(validate_response_events(text))
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
