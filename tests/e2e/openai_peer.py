"""A stand-in for OpenAI's own API, for tests that cannot reach it.

It answers `POST /v1/chat/completions` (plain and `stream: true`),
`POST /v1/embeddings` (deterministic unit vectors), `POST /v1/completions`
(legacy text completions, streamed too) and `GET /v1/models` (and
`/v1/models/{id}`) with the shapes OpenAI's API returns,
including the ones the tiny random-weight test models cannot produce:

* `tools` in the request (and `tool_choice` not "none"): an assistant message
  with `tool_calls` (one call to the first function tool, or the one
  `tool_choice` names; `arguments` a JSON string built from its parameters)
  and finish_reason "tool_calls"; streamed the way OpenAI streams it (a first
  delta with id, type, function.name and empty arguments, then argument
  fragments);
* `logprobs: true`: `logprobs.content`, each token with `top_logprobs` of the
  requested length;
* `n` > 1: n choices;
* `response_format` json_schema (or json_object): content that is valid JSON
  (for json_schema, an instance of the schema);
* `max_tokens`/`max_completion_tokens` shorter than the answer: truncated,
  finish_reason "length";
* `refusal: null`, `annotations: []`, usage with its details;
  `stream_options.include_usage`: `usage: null` on every chunk and a last chunk
  with no choices and the usage; `obfuscation` on chunks unless
  `stream_options.include_obfuscation` is false;
* errors in OpenAI's error shape (bad JSON, missing `model`/`messages`,
  unknown model id, unknown route).

Every body it received is recorded: `GET /_requests` returns them as a JSON
list (parsed JSON, or the raw text where it was not JSON), `DELETE /_requests`
forgets them.  With `delay` each chat completion is held that many seconds
before it is answered, and `GET /_stats` tells how many were in flight at
most (`max_in_flight`; `DELETE /_stats` starts counting again): what a
gateway's concurrency limit let through.  Its answers validate against tests/fixtures/openai-schemas.json
(tests/fixtures/test_openai_schema.py checks that).

    python tests/e2e/openai_peer.py --port 8081      # serves until killed

    from openai_peer import running_openai_peer, recorded_requests
    with running_openai_peer() as base_url:          # "http://127.0.0.1:PORT/v1"
        ...
        bodies = recorded_requests(base_url)

Standard library only; listens on 127.0.0.1.
"""

import argparse
import http.server
import json
import math
import random
import re
import string
import sys
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager

HOST = "127.0.0.1"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano")
ANSWER = "This is a recorded answer from the OpenAI stand-in."
SYSTEM_FINGERPRINT = "fp_peer0000001"
MODEL_CREATED = 1_715_367_049


def _tokens(text):
    """Split like a BPE tokenizer would, roughly: words with their leading
    space, punctuation alone; the pieces join back to `text`."""
    return re.findall(r" ?[^\s.,!?:;]+|[.,!?:;]|\s+", text)


def _pieces(text, size=6):
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _instance(schema, root=None, depth=0):
    """A small value valid for a JSON Schema (the subset function parameters
    and response_format schemas use)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 8:
        return None if schema is False else {}
    if "$ref" in schema:
        ref = schema["$ref"]
        target = root
        if ref.startswith("#/"):
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            return _instance(target, root, depth + 1)
        return {}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            branches = [b for b in schema[key] if not (isinstance(b, dict) and b.get("type") == "null")]
            return _instance((branches or schema[key])[0], root, depth + 1)
    if schema.get("allOf"):
        merged = {}
        for part in schema["allOf"]:
            value = _instance(part, root, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
            else:
                return value
        return merged
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _instance(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        return [_instance(schema.get("items", {}), root, depth + 1) for _ in range(count)]
    if kind == "string":
        value = "Paris" if "format" not in schema else {
            "date": "2024-05-13", "date-time": "2024-05-13T12:00:00Z",
            "email": "peer@example.com", "uri": "https://example.com/",
            "uuid": "00000000-0000-4000-8000-000000000000",
        }.get(schema["format"], "Paris")
        if "minLength" in schema and len(value) < schema["minLength"]:
            value = value.ljust(int(schema["minLength"]), "x")
        if "maxLength" in schema:
            value = value[: int(schema["maxLength"])]
        return value
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(1, math.ceil(low) + (1 if "exclusiveMinimum" in schema else 0))
        if "maximum" in schema and value > schema["maximum"]:
            value = math.floor(schema["maximum"])
        return value
    if kind == "boolean":
        return True
    return None


def _error(status, message, type_="invalid_request_error", param=None, code=None):
    return status, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _count_prompt_tokens(messages):
    total = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        total += 4 + len(_tokens(content or ""))
    return total + 3


class Completion:
    """What one chat-completions request asks for, and the answer's parts."""

    def __init__(self, body):
        self.body = body
        self.id = "chatcmpl-" + uuid.uuid4().hex[:29]
        self.created = int(time.time())
        self.model = body["model"]
        self.n = body.get("n") if body.get("n") is not None else 1
        self.logprobs = body.get("logprobs") is True
        self.top = body.get("top_logprobs") or 0
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        self.tool = self._pick_tool(body)
        if self.tool is not None:
            params = self.tool.get("parameters") or {"type": "object", "properties": {}}
            self.arguments = json.dumps(_instance(params))
            self.tokens, self.finish = [], "tool_calls"
        else:
            self.tokens = _tokens(self._text(body.get("response_format")))
            self.finish = "stop"
            if isinstance(limit, int) and 0 < limit < len(self.tokens):
                self.tokens, self.finish = self.tokens[:limit], "length"
        self.prompt_tokens = _count_prompt_tokens(body.get("messages"))

    @staticmethod
    def _pick_tool(body):
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        choice = body.get("tool_choice")
        if not tools or choice == "none":
            return None
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            for tool in tools:
                if tool.get("function", {}).get("name") == name:
                    return tool["function"]
        return tools[0].get("function") or {"name": "tool"}

    @staticmethod
    def _text(response_format):
        kind = (response_format or {}).get("type")
        if kind == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
            return json.dumps(_instance(schema))
        if kind == "json_object":
            return json.dumps({"answer": ANSWER})
        return ANSWER

    def content(self):
        return None if self.tool is not None else "".join(self.tokens)

    def tool_call_id(self, index):
        return f"call_{self.id[-20:]}{index}"

    def token_logprob(self, token, position):
        def entry(tok, logprob):
            return {"token": tok, "logprob": logprob, "bytes": list(tok.encode("utf-8"))}
        first = entry(token, round(-0.01 * (position + 1), 6))
        first["top_logprobs"] = [
            entry(token if k == 0 else f"{token.strip() or '_'}{k}", round(-0.01 * (position + 1) - k, 6))
            for k in range(self.top)
        ]
        return first

    def usage(self):
        completion = self.n * (len(self.tokens) if self.tool is None else len(_tokens(self.arguments)))
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            },
        }

    def response(self):
        choices = []
        for i in range(self.n):
            message = {"role": "assistant", "content": self.content(), "refusal": None,
                       "annotations": []}
            if self.tool is not None:
                message["tool_calls"] = [{
                    "id": self.tool_call_id(i), "type": "function",
                    "function": {"name": self.tool.get("name", "tool"), "arguments": self.arguments},
                }]
            logprobs = None
            if self.logprobs:
                logprobs = {"content": [self.token_logprob(t, p) for p, t in enumerate(self.tokens)],
                            "refusal": None}
            choices.append({"index": i, "message": message, "logprobs": logprobs,
                            "finish_reason": self.finish})
        return {
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model, "choices": choices, "usage": self.usage(),
            "service_tier": "default", "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def chunks(self):
        """The chunks of the streamed answer, as OpenAI orders them."""
        options = self.body.get("stream_options") or {}
        include_usage = options.get("include_usage") is True
        obfuscate = options.get("include_obfuscation") is not False

        def chunk(choices, usage=False):
            out = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                   "model": self.model, "service_tier": "default",
                   "system_fingerprint": SYSTEM_FINGERPRINT, "choices": choices}
            if include_usage:
                out["usage"] = self.usage() if usage else None
            if obfuscate:
                out["obfuscation"] = "".join(random.choices(string.ascii_letters + string.digits,
                                                            k=random.randint(2, 12)))
            return out

        def choice(i, delta, logprobs=None, finish=None):
            return {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

        for i in range(self.n):
            if self.tool is not None:
                yield chunk([choice(i, {
                    "role": "assistant", "content": None, "refusal": None,
                    "tool_calls": [{"index": 0, "id": self.tool_call_id(i), "type": "function",
                                    "function": {"name": self.tool.get("name", "tool"), "arguments": ""}}],
                })])
            else:
                yield chunk([choice(i, {"role": "assistant", "content": "", "refusal": None},
                                    {"content": [], "refusal": None} if self.logprobs else None)])
        if self.tool is not None:
            for piece in _pieces(self.arguments):
                for i in range(self.n):
                    yield chunk([choice(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})])
        else:
            for position, token in enumerate(self.tokens):
                for i in range(self.n):
                    logprobs = None
                    if self.logprobs:
                        logprobs = {"content": [self.token_logprob(token, position)], "refusal": None}
                    yield chunk([choice(i, {"content": token}, logprobs)])
        for i in range(self.n):
            yield chunk([choice(i, {}, None, self.finish)])
        if include_usage:
            yield chunk([], usage=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-peer/1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing ---------------------------------------------------------
    def _read_body(self):
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, chunks):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        self.end_headers()

        def write(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        for item in chunks:
            write(b"data: " + json.dumps(item).encode() + b"\n\n")
        write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _route(self):
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def _unknown(self):
        self._send_json(*_error(404, f"Invalid URL ({self.command} {self._route()})"))

    # -- routes -----------------------------------------------------------
    def do_GET(self):  # noqa: N802 - http.server's naming
        route = self._route()
        if route == "/_requests":
            with self.server.lock:
                self._send_json(200, list(self.server.requests))
        elif route == "/_stats":
            with self.server.lock:
                self._send_json(200, {"in_flight": self.server.in_flight,
                                      "max_in_flight": self.server.max_in_flight})
        elif route == "/v1/models":
            self._send_json(200, {"object": "list", "data": [self._model(m) for m in self.server.models]})
        elif route.startswith("/v1/models/"):
            name = route[len("/v1/models/"):]
            if name in self.server.models:
                self._send_json(200, self._model(name))
            else:
                self._send_json(*_error(404, f"The model '{name}' does not exist",
                                        param="model", code="model_not_found"))
        else:
            self._unknown()

    def do_DELETE(self):  # noqa: N802
        if self._route() == "/_requests":
            with self.server.lock:
                self.server.requests.clear()
            self._send_json(200, [])
        elif self._route() == "/_stats":
            with self.server.lock:
                self.server.max_in_flight = self.server.in_flight
                self._send_json(200, {"in_flight": self.server.in_flight,
                                      "max_in_flight": self.server.max_in_flight})
        else:
            self._unknown()

    def do_POST(self):  # noqa: N802
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
            recorded = raw.decode("utf-8", "replace")
        else:
            recorded = body
        with self.server.lock:
            self.server.requests.append(recorded)
        route = self._route()
        if route not in ("/v1/chat/completions", "/v1/embeddings", "/v1/completions"):
            return self._unknown()
        if not isinstance(body, dict):
            return self._send_json(*_error(
                400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                     "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                     "but what was sent was not valid JSON.)"))
        if route == "/v1/embeddings":
            return self._embeddings(body)
        if route == "/v1/completions":
            return self._completions(body)
        for field in ("model", "messages"):
            if field not in body:
                return self._send_json(*_error(400, f"Missing required parameter: '{field}'.",
                                               param=field, code="missing_required_parameter"))
        if not isinstance(body["messages"], list) or not body["messages"]:
            return self._send_json(*_error(400, "Invalid 'messages': empty array. Expected an array "
                                                "with minimum length 1, but got an empty array instead.",
                                           param="messages", code="empty_array"))
        n = body.get("n")
        n = 1 if n is None else n
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
            return self._send_json(*_error(400, f"Invalid 'n': integer below minimum value. Expected a "
                                                f"value >= 1 and <= 128, but got {n!r} instead.",
                                           param="n", code="integer_below_min_value"))
        top = body.get("top_logprobs")
        if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
            return self._send_json(*_error(400, "Invalid 'top_logprobs': expected an integer from 0 to 20.",
                                           param="top_logprobs", code="invalid_value"))
        completion = Completion(body)
        with self.server.lock:
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            if self.server.delay:
                time.sleep(self.server.delay)
            if body.get("stream") is True:
                self._send_stream(completion.chunks())
            else:
                self._send_json(200, completion.response())
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def _embeddings(self, body):
        """Deterministic unit vectors (8 floats, or `dimensions`), one per input."""
        inputs = body.get("input")
        if "model" not in body or inputs in (None, "", []):
            field = "model" if "model" not in body else "input"
            return self._send_json(*_error(400, f"Missing required parameter: '{field}'.",
                                           param=field, code="missing_required_parameter"))
        inputs = inputs if isinstance(inputs, list) else [inputs]
        size = body.get("dimensions") or 8
        data, tokens = [], 0
        for i, text in enumerate(inputs):
            seed = random.Random(json.dumps(text))
            vector = [seed.uniform(-1, 1) for _ in range(size)]
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vector]})
            tokens += len(_tokens(text)) if isinstance(text, str) else len(text)
        self._send_json(200, {"object": "list", "data": data, "model": body["model"],
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _completions(self, body):
        """The recorded answer as legacy `text_completion`s, cut at `max_tokens` (default 16)."""
        if "model" not in body or "prompt" not in body:
            field = "model" if "model" not in body else "prompt"
            return self._send_json(*_error(400, f"Missing required parameter: '{field}'.",
                                           param=field, code="missing_required_parameter"))
        prompt = body["prompt"]
        prompt_tokens = len(_tokens(prompt if isinstance(prompt, str) else json.dumps(prompt)))
        tokens = _tokens(ANSWER)
        most = body.get("max_tokens") or 16
        finish = "length" if len(tokens) > most else "stop"
        tokens = tokens[:most]
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                 "total_tokens": prompt_tokens + len(tokens)}
        head = {"id": "cmpl-" + uuid.uuid4().hex[:29], "object": "text_completion",
                "created": int(time.time()), "model": body["model"], "system_fingerprint": SYSTEM_FINGERPRINT}
        if body.get("stream") is not True:
            return self._send_json(200, {**head, "usage": usage, "choices": [
                {"index": 0, "text": "".join(tokens), "logprobs": None, "finish_reason": finish}]})
        chunks = [{**head, "choices": [{"index": 0, "text": t, "logprobs": None, "finish_reason": None}]}
                  for t in tokens]
        chunks.append({**head, "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**head, "choices": [], "usage": usage})
        self._send_stream(chunks)

    @staticmethod
    def _model(name):
        return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}


class PeerServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port=0, models=DEFAULT_MODELS, verbose=False, delay=0.0):
        super().__init__((HOST, port), Handler)
        self.models = list(models)
        self.verbose = verbose
        self.delay = delay
        self.requests = []
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    @property
    def base_url(self):
        return f"http://{HOST}:{self.server_address[1]}/v1"


@contextmanager
def running_openai_peer(port=0, models=DEFAULT_MODELS, delay=0.0):
    """Serve the stand-in on 127.0.0.1 (port 0: any free one) in a thread,
    holding each chat completion `delay` seconds; yield its base URL,
    `http://127.0.0.1:PORT/v1`; stop it on exit."""
    server = PeerServer(port, models, delay=delay)
    thread = threading.Thread(target=server.serve_forever, name="openai-peer", daemon=True)
    thread.start()
    try:
        yield server.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def recorded_requests(base_url):
    """The bodies the peer at `base_url` (…/v1) has received, oldest first."""
    root = base_url.rstrip("/").removesuffix("/v1")
    with urllib.request.urlopen(root + "/_requests", timeout=10) as r:
        return json.loads(r.read())


def main(argv=None):
    parser = argparse.ArgumentParser(description="OpenAI API stand-in for tests (127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--model", action="append", dest="models",
                        help=f"a model id for /v1/models (repeatable; default {', '.join(DEFAULT_MODELS)})")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    server = PeerServer(args.port, args.models or DEFAULT_MODELS, args.verbose)
    print(f"openai peer listening on {server.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
