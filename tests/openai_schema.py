"""Validate bodies against the official OpenAI schemas (issue 16).

The schemas are `tests/fixtures/openai-schemas.json`, generated from
github.com/openai/openai-openapi by scripts/openai_schemas.py (its docstring
says how to regenerate it); its "source" key names the commit.

    from openai_schema import validate, validate_sse

    validate("CreateChatCompletionResponse", body)      # AssertionError if not
    chunks = validate_sse(response_text)                # the decoded data: events
    events = validate_response_events(response_text)    # a streamed Response

Names: CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
ListModelsResponse, Model, ErrorResponse, CreateChatCompletionRequest,
CreateCompletionResponse, CreateEmbeddingResponse, Response, ResponseStreamEvent
(`SCHEMAS` lists them).
"""

import json
from functools import lru_cache
from pathlib import Path

import jsonschema
from jsonschema.exceptions import best_match

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "openai-schemas.json"
MAX_ERRORS = 5
MAX_MESSAGE = 300


@lru_cache(maxsize=None)
def _fixture():
    with open(FIXTURE, encoding="utf-8") as f:
        return json.load(f)


SOURCE = _fixture()["source"]
SCHEMAS = tuple(_fixture()["schemas"])


@lru_cache(maxsize=None)
def _validator(name):
    try:
        schema = _fixture()["schemas"][name]
    except KeyError:
        raise KeyError(f"no schema {name!r} in {FIXTURE.name}; have {', '.join(SCHEMAS)}") from None
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _clip(message):
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."


def _cause(error):
    """Through anyOf/oneOf, the most specific reason: the deepest error, and
    at equal depth one that is not just the other branch's type mismatch."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return error


def _describe(error):
    if error.validator in ("anyOf", "oneOf") and error.context:
        cause = _cause(error)
        return (f"{error.json_path}: matches none of its {error.validator} branches; "
                f"closest: {cause.json_path}: {_clip(cause.message)}")
    return f"{error.json_path}: {_clip(error.message)}"


def errors(name, instance):
    """Every violation of schema `name` by `instance`, as "$.path: message"."""
    found = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.path))
    if not found:
        return []
    first = best_match(found)
    rest = [e for e in found if e is not first]
    return [_describe(e) for e in [first] + rest]


def validate(name, instance):
    """Raise AssertionError naming the JSON path and message of each violation
    of the OpenAI schema `name` (at most MAX_ERRORS listed)."""
    found = errors(name, instance)
    if found:
        more = f"\n  ... and {len(found) - MAX_ERRORS} more" if len(found) > MAX_ERRORS else ""
        raise AssertionError(
            f"body does not match OpenAI {name} ({SOURCE}):\n  "
            + "\n  ".join(found[:MAX_ERRORS]) + more
        )


def sse_named_events(body_text):
    """(event name or None, data) of each server-sent event in `body_text`, in order.

    Follows the SSE rules: events end at a blank line, `data:` lines of one
    event are joined with "\\n", one space after the colon is dropped, lines
    starting with ":" are comments, other fields (id, retry) are skipped.
    """
    events, data, name = [], [], None
    text = body_text.replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
            data, name = [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
    if data:  # a final event without its blank line is still dispatched here
        events.append((name, "\n".join(data)))
    return events


def sse_events(body_text):
    """The `data` of each server-sent event in `body_text`, in order."""
    return [data for _, data in sse_named_events(body_text)]


TERMINAL_RESPONSE_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def validate_response_events(body_text):
    """Validate a streamed Response (`POST /v1/responses`, `stream: true`);
    return its decoded events.

    Every event is a ResponseStreamEvent named (`event:`) by its `type`, with
    sequence numbers 0, 1, 2, …; the first is `response.created`, the last a
    terminal one (completed, incomplete or failed), and there is no `[DONE]`.
    """
    named = sse_named_events(body_text)
    if not named:
        raise AssertionError(f"no events in the stream body: {body_text[:200]!r}")
    decoded = []
    for i, (name, data) in enumerate(named):
        try:
            event = json.loads(data)
        except ValueError as e:
            raise AssertionError(f"event {i} is not JSON ({e}): {data[:200]!r}") from None
        try:
            validate("ResponseStreamEvent", event)
        except AssertionError as e:
            raise AssertionError(f"event {i} ({event.get('type')}): {e}") from None
        if name != event.get("type"):
            raise AssertionError(f"event {i}: named {name!r} but its type is {event.get('type')!r}")
        if event.get("sequence_number") != i:
            raise AssertionError(f"event {i}: sequence_number {event.get('sequence_number')}")
        decoded.append(event)
    if decoded[0]["type"] != "response.created":
        raise AssertionError(f"the stream starts with {decoded[0]['type']}, not response.created")
    if decoded[-1]["type"] not in TERMINAL_RESPONSE_EVENTS:
        raise AssertionError(f"the stream ends with {decoded[-1]['type']}, not a terminal event")
    return decoded


def validate_sse(body_text, schema="CreateChatCompletionStreamResponse"):
    """Validate a streamed chat completion body; return its decoded chunks.

    Every `data:` event but the last must be JSON: a chunk validated as
    `schema`, or, when it has a top-level "error", an ErrorResponse.  The last
    event must be `[DONE]`, and `[DONE]` must appear only there.
    """
    events = sse_events(body_text)
    if not events:
        raise AssertionError(f"no data: events in the stream body: {body_text[:200]!r}")
    if events[-1] != "[DONE]":
        raise AssertionError(f"the stream does not end with `data: [DONE]`; last event: {events[-1][:200]!r}")
    chunks = []
    for i, event in enumerate(events[:-1]):
        if event == "[DONE]":
            raise AssertionError(f"event {i}: `data: [DONE]` before the end of the stream")
        try:
            chunk = json.loads(event)
        except ValueError as e:
            raise AssertionError(f"event {i} is not JSON ({e}): {event[:200]!r}") from None
        name = "ErrorResponse" if isinstance(chunk, dict) and "error" in chunk else schema
        try:
            validate(name, chunk)
        except AssertionError as e:
            raise AssertionError(f"event {i}: {e}") from None
        chunks.append(chunk)
    return chunks
