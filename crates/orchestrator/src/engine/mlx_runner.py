"""Harpoon's bridge to mlx-lm, run inside the service's embedded interpreter.

One Runner per model: it loads the weights once and streams tokens for one
request at a time (the Rust side queues requests per model). Plain chat goes
through `stream`/`generate`; requests with OpenAI's extra fields (tools,
response formats, logprobs, penalties, logit_bias, n) through `rich`, which
answers OpenAI-shaped choices and constrains output with llguidance grammars.
"""

import gc
import json
import re
import time
import uuid

import mlx.core as mx
import numpy as np
from mlx_lm import load, stream_generate
from mlx_lm.sample_utils import make_logits_processors, make_sampler

# OpenAI's floor for a logprob that is -inf (a token the grammar forbids):
# JSON has no infinity.
LOGPROB_FLOOR = -9999.0
TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


class Runner:
    def __init__(self, path):
        self.model, self.tokenizer = load(path)
        # Built on first use: only requests with a grammar need them.
        self._lltok = None
        self._closing = None

    def _prompt(self, messages, enable_thinking, tools=None):
        # Render to text, then encode: the template already holds any BOS.
        extra = {"tools": tools} if tools else {}
        try:
            text = self.tokenizer.apply_chat_template(
                messages,
                add_generation_prompt=True,
                tokenize=False,
                enable_thinking=enable_thinking,
                **extra,
            )
        except Exception as e:  # the template's own rules, e.g. alternating roles
            # ValueError marks the caller's mistake (400), not the engine's.
            raise ValueError(f"the model's chat template rejects this conversation: {e}") from e
        return self.tokenizer.encode(text, add_special_tokens=False)

    def stream(self, messages, max_tokens, temperature, top_p, seed, enable_thinking):
        if seed is not None:
            mx.random.seed(seed)
        prompt = self._prompt(messages, enable_thinking)
        sampler = make_sampler(temp=temperature, top_p=top_p)
        for r in stream_generate(
            self.model, self.tokenizer, prompt, max_tokens=max_tokens, sampler=sampler
        ):
            yield r.text, r.prompt_tokens, r.generation_tokens, r.finish_reason

    def generate(self, messages, max_tokens, temperature, top_p, seed, enable_thinking, stop):
        """The whole reply in one call: no per-token crossing into Rust.

        Returns (text, prompt_tokens, generation_tokens, finish_reason,
        seconds_to_first_token); a stop sequence cuts the text and ends with "stop".
        """
        pieces, first, prompt_tokens, generated, finish = [], None, 0, 0, "stop"
        text = ""
        for piece, prompt_tokens, generated, reason in self.stream(
            messages, max_tokens, temperature, top_p, seed, enable_thinking
        ):
            if first is None:
                first = time.perf_counter()
            pieces.append(piece)
            if stop:
                text = "".join(pieces)
                cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
                if cut >= 0:
                    return text[:cut], prompt_tokens, generated, "stop", first
            if reason is not None:
                finish = reason
                break
        return "".join(pieces), prompt_tokens, generated, finish, first

    def _llguidance_tokenizer(self):
        if self._lltok is None:
            import llguidance.hf

            # The same end-of-turn tokens mlx-lm stops on, so the grammar's
            # end is where generation ends.
            try:
                self._lltok = llguidance.hf.from_tokenizer(
                    self.tokenizer._tokenizer, eos_token=sorted(self.tokenizer.eos_token_ids)
                )
            except ValueError as e:  # a slow (Python) tokenizer: not this request's fault
                raise RuntimeError(f"llguidance cannot read this model's tokenizer: {e}") from e
        return self._lltok

    def _closers(self):
        if self._closing is None:
            self._closing = Closers(self._llguidance_tokenizer(), self.tokenizer.eos_token_ids)
        return self._closing

    def _special_or_text(self, text):
        """A Lark terminal for `text`: the token itself when the tokenizer
        has it as one added token (Qwen3's <tool_call>), else the literal."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) == 1 and self._llguidance_tokenizer().is_special_token(ids[0]):
            return f"<[{ids[0]}]>"
        return json.dumps(text)

    def rich(self, messages_json, max_tokens, temperature, top_p, seed, enable_thinking, stop,
             extra_json, streaming):
        """Generation with OpenAI's extra fields (tools, response_format,
        logprobs, penalties, logit_bias, n): yields JSON events, each either
        {"choices": [...chunk choices...], "text": str} (streaming only) or,
        last, {"done": true, "choices": [...message choices...], "text",
        "finish_reason", "prompt_tokens", "completion_tokens", "first"}.
        ValueError names the field a request gets wrong."""
        messages = json.loads(messages_json)
        plan = Plan(json.loads(extra_json), self.tokenizer)
        if plan.tools and not _template_renders_tools(self.tokenizer):
            raise ValueError("tools: the model's chat template does not render tools")
        matcher_grammar = plan.grammar(self._special_or_text)
        # Thinking is off while a grammar applies: the grammar starts at the
        # first generated token, and the constrained part gets the whole budget.
        thinking = enable_thinking and matcher_grammar is None
        prompt = self._prompt(messages, thinking, plan.rendered_tools())
        fresh = None
        if matcher_grammar is not None:
            from llguidance import LLMatcher

            # Compiled once; each choice gets a copy in the start state.
            try:
                fresh = LLMatcher(self._llguidance_tokenizer(), matcher_grammar, log_level=0)
            except ValueError as e:
                raise ValueError(f"{plan.grammar_param}: {e}") from e
            if fresh.is_error():
                raise ValueError(f"{plan.grammar_param}: {fresh.get_error()}")
        if seed is not None:
            mx.random.seed(seed)
        sampler = make_sampler(temp=temperature, top_p=top_p)
        choices, total, finish0, first = [], 0, "stop", None
        for index in range(plan.n):
            processors = make_logits_processors(
                logit_bias=plan.logit_bias,
                presence_penalty=plan.presence_penalty,
                frequency_penalty=plan.frequency_penalty,
            )
            if fresh is not None:
                processors.append(GrammarMask(fresh.deep_copy(), self._closers(), max_tokens))
            one = Choice(index, plan, stop, self, streaming)
            if streaming and index > 0:
                # The service opens choice 0 with the role; the others here.
                yield json.dumps(one._chunk({"role": "assistant", "content": ""}))
            for r in stream_generate(
                self.model, self.tokenizer, prompt, max_tokens=max_tokens, sampler=sampler,
                logits_processors=processors or None,
            ):
                if first is None:
                    first = time.perf_counter()
                for event in one.push(r):
                    yield json.dumps(event)
                if one.finished:
                    break
            for event in one.finish():
                yield json.dumps(event)
            total += one.generated
            choices.append(one.message())
            if index == 0:
                finish0 = one.finish_reason
        yield json.dumps({
            "done": True,
            "choices": choices,
            "text": choices[0]["message"]["content"] or "",
            "finish_reason": finish0,
            "prompt_tokens": len(prompt),
            "completion_tokens": total,
            "first": first,
        })

    def close(self):
        self.model = None
        self.tokenizer = None
        gc.collect()
        if hasattr(mx, "clear_cache"):
            mx.clear_cache()


def _template_renders_tools(tokenizer):
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = template.get("default", "")
    return "tools" in template


def _field(extra, name, kind, default=None):
    value = extra.get(name)
    if value is None:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {kind.__name__}")
    return value


class Plan:
    """What a request's extra fields ask of generation, checked."""

    def __init__(self, extra, tokenizer):
        honoured = {
            "tools", "tool_choice", "parallel_tool_calls", "response_format", "logprobs",
            "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "n",
        }
        for name in sorted(extra):
            if name not in honoured and extra[name] is not None:
                raise ValueError(f"{name}: the mlx engine does not honour this field")
        self.n = _field(extra, "n", int, 1)
        if not 1 <= self.n <= 128:
            raise ValueError("n: must be between 1 and 128")
        self.logprobs = _field(extra, "logprobs", bool, False)
        self.top_logprobs = _field(extra, "top_logprobs", int, 0)
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError("top_logprobs: must be between 0 and 20")
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs: needs logprobs set to true")
        penalties = {}
        for name in ("presence_penalty", "frequency_penalty"):
            value = _field(extra, name, float, 0.0)
            if not -2.0 <= value <= 2.0:
                raise ValueError(f"{name}: must be between -2 and 2")
            penalties[name] = value or None
        self.presence_penalty = penalties["presence_penalty"]
        self.frequency_penalty = penalties["frequency_penalty"]
        self.logit_bias = None
        bias = _field(extra, "logit_bias", dict, {})
        vocab = len(tokenizer.get_vocab())
        for key, value in bias.items():
            try:
                token = int(key)
            except ValueError:
                raise ValueError(f"logit_bias: {key!r} is not a token id") from None
            if not 0 <= token < vocab:
                raise ValueError(f"logit_bias: token {token} is not in the model's vocabulary")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not -100 <= value <= 100:
                raise ValueError(f"logit_bias: the bias of {key} must be a number from -100 to 100")
            self.logit_bias = self.logit_bias or {}
            self.logit_bias[token] = float(value)
        self.tools = []
        for i, tool in enumerate(_field(extra, "tools", list, [])):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
                raise ValueError(f"tools[{i}]: only function tools are supported")
            if not isinstance(function.get("name"), str) or not function["name"]:
                raise ValueError(f"tools[{i}].function.name: a function needs a name")
            self.tools.append(tool)
        self.parallel = _field(extra, "parallel_tool_calls", bool, True)
        choice = extra.get("tool_choice")
        names = [t["function"]["name"] for t in self.tools]
        if choice is None:
            choice = "auto" if self.tools else "none"
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
            if name not in names:
                raise ValueError(f"tool_choice: no function named {name!r} among the tools")
            self.tool_choice, self.forced = "named", name
        elif choice in ("none", "auto", "required"):
            if choice == "required" and not self.tools:
                raise ValueError("tool_choice: 'required' needs tools")
            self.tool_choice, self.forced = choice, None
        else:
            raise ValueError("tool_choice: expected 'none', 'auto', 'required' or a named function")
        self.format = None
        self.grammar_param = "response_format"
        response_format = _field(extra, "response_format", dict, {"type": "text"})
        kind = response_format.get("type")
        if kind == "json_object":
            self.format = ({"type": "object"}, False)
        elif kind == "json_schema":
            spec = response_format.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise ValueError("response_format.json_schema: needs a name")
            schema = spec.get("schema", {})
            if not isinstance(schema, dict):
                raise ValueError("response_format.json_schema.schema: expected an object")
            self.format = (schema, bool(spec.get("strict")))
        elif kind != "text":
            raise ValueError("response_format.type: expected 'text', 'json_object' or 'json_schema'")

    def offers_tools(self):
        return bool(self.tools) and self.tool_choice != "none"

    def rendered_tools(self):
        # tool_choice "none": the model is not shown the tools at all, so it
        # cannot try to call one (documented in docs/openai-compatibility.md).
        return self.tools if self.offers_tools() else None

    def grammar(self, terminal):
        """The llguidance grammar (Lark) the reply must match, or None."""
        rules = []

        def json_rule(schema, strict):
            # Compact JSON: whitespace a weak model could emit without end
            # never eats the budget. Non-strict schemas skip keywords the
            # compiler does not know; strict ones fail on them (400).
            schema = dict(schema)
            options = dict(schema.get("x-guidance") or {})
            options.setdefault("whitespace_flexible", False)
            options.setdefault("lenient", not strict)
            schema["x-guidance"] = options
            return "%json " + json.dumps(schema)

        forced = self.tool_choice in ("required", "named")
        if forced or (self.tool_choice == "auto" and self.format is not None):
            functions = [
                t["function"] for t in self.tools
                if self.forced is None or t["function"]["name"] == self.forced
            ]
            call = {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "name": {"const": f["name"]},
                            "arguments": f.get("parameters") or {"type": "object"},
                        },
                        "required": ["name", "arguments"],
                        "additionalProperties": False,
                    }
                    for f in functions
                ]
            }
            strict = all(bool(f.get("strict")) for f in functions)
            rules.append(f"call: {terminal('<tool_call>')} \"\\n\" call_body \"\\n\" {terminal('</tool_call>')}")
            rules.append(f"call_body: {json_rule(call, strict)}")
            many = self.parallel and self.forced is None
            rules.append('calls: call ("\\n" call)*' if many else "calls: call")
            self.grammar_param = "tools"
        if self.format is not None:
            rules.append(f"answer: {json_rule(*self.format)}")
        if forced:
            start = "calls"
        elif self.format is not None and self.offers_tools():
            start = "answer | calls"
        elif self.format is not None:
            start = "answer"
            self.grammar_param = "response_format"
        else:
            return None
        return "%llguidance {}\nstart: " + start + "\n" + "\n".join(rules) + "\n"


class Closers:
    """Per token id, what it does to JSON near the end of the budget: ends
    the turn, holds an unescaped quote (ends a string), or begins with a
    closing bracket (ends a container); and the bytes of each token."""

    def __init__(self, lltok, eos):
        n = lltok.vocab_size
        self.raw = [lltok.decode_bytes([i]) for i in range(n)]
        self.eos = np.zeros(n, dtype=bool)
        self.quote = np.zeros(n, dtype=bool)
        self.bracket = np.zeros(n, dtype=bool)
        for i, raw in enumerate(self.raw):
            self.quote[i] = re.search(rb'(^|[^\\])"', raw) is not None
            self.bracket[i] = raw[:1] in (b"}", b"]")
        for i in eos:
            if i < n:
                self.eos[i] = True


class GrammarMask:
    """An mlx-lm logits processor: forbids every token the grammar does not
    allow next. mlx-lm calls it with the tokens so far, the last one being
    the token sampled at the previous step, which advances the matcher.

    In the last `guard` steps before max_tokens it narrows, where it can, the
    allowed tokens to those that close what is open (the turn, a string, an
    object or array), so that a model that would not end a string by itself
    (a random-weight one) still finishes a valid answer rather than one cut
    off mid-value; a model that ends its answer in time never meets it."""

    def __init__(self, matcher, closers, max_tokens):
        self.matcher = matcher
        self.closers = closers
        self.max_tokens = max_tokens
        self.guard = min(64, max_tokens // 4)
        self.steps = 0
        self.in_string = False
        self.escape = False

    def _track(self, token):
        # Whether the JSON written so far is inside a string.
        raw = self.closers.raw[token] if token < len(self.closers.raw) else b""
        for b in raw:
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif b == 0x5C:  # backslash
                    self.escape = True
                elif b == 0x22:  # quote
                    self.in_string = False
            elif b == 0x22:
                self.in_string = True

    def __call__(self, tokens, logits):
        if self.steps:
            token = int(tokens[-1].item())
            self.matcher.consume_token(token)
            self._track(token)
        self.steps += 1
        if self.matcher.is_error():
            # Cannot happen with tokens the mask allowed; fail the request
            # rather than emit text the grammar refuses.
            raise RuntimeError(f"constrained decoding: {self.matcher.get_error()}")
        bits = np.unpackbits(
            np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8), bitorder="little"
        )
        vocab = logits.shape[-1]
        allowed = np.zeros(vocab, dtype=bool)
        n = min(vocab, bits.shape[0])
        allowed[:n] = bits[:n].astype(bool)
        if self.max_tokens - self.steps < self.guard:
            c = self.closers
            k = min(vocab, c.eos.shape[0])
            kinds = (c.eos, c.quote) if self.in_string else (c.eos, c.bracket, c.quote)
            for kind in kinds:
                narrowed = np.zeros(vocab, dtype=bool)
                narrowed[:k] = allowed[:k] & kind[:k]
                if narrowed.any():
                    allowed = narrowed
                    break
        return mx.where(mx.array(allowed), logits, -float("inf"))


def _new_call_id():
    return "call_" + uuid.uuid4().hex[:24]


def parse_tool_calls(text):
    """Qwen3's tool calls in `text`: the text outside the calls and the calls
    in OpenAI's shape; blocks that are not a JSON call stay text."""
    calls, rest, at = [], [], 0
    for m in TOOL_CALL.finditer(text):
        try:
            body = json.loads(m.group(1))
        except ValueError:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            continue
        arguments = body.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        rest.append(text[at:m.start()])
        at = m.end()
        calls.append({
            "id": _new_call_id(),
            "type": "function",
            "function": {"name": body["name"], "arguments": arguments},
        })
    rest.append(text[at:])
    return "".join(rest), calls


class Choice:
    """One choice being generated: its text, stop sequences, logprobs and
    tool calls, as chunks while streaming and as a message at the end."""

    def __init__(self, index, plan, stop, runner, streaming):
        self.index, self.plan, self.streaming = index, plan, streaming
        self.stop = [s for s in (stop or []) if s]
        # Enough text held back that a stop sequence split across tokens is
        # caught before any of it is streamed.
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.runner = runner
        self.eos = set(runner.tokenizer.eos_token_ids)
        self.text = ""
        self.sent = 0  # characters of text already streamed
        self.lps = []  # (start offset in text, logprob entry)
        self.unsent = 0  # entries of lps not yet streamed
        self.generated = 0
        self.finished = False
        self.finish_reason = "stop"
        self.tools_mode = plan.offers_tools()
        self.content, self.calls = "", []

    def _entry(self, token, logprobs):
        lltok = self.runner._llguidance_tokenizer()
        raw = lltok.decode_bytes([token])
        entry = {
            "token": raw.decode("utf-8", errors="replace"),
            "logprob": max(LOGPROB_FLOOR, logprobs[token].item()),
            "bytes": list(raw),
            "top_logprobs": [],
        }
        k = self.plan.top_logprobs
        if k:
            top = mx.argpartition(-logprobs, kth=k - 1)[:k]
            pairs = sorted(zip(top.tolist(), logprobs[top].tolist()), key=lambda p: -p[1])
            for i, value in pairs:
                b = lltok.decode_bytes([i])
                entry["top_logprobs"].append({
                    "token": b.decode("utf-8", errors="replace"),
                    "logprob": max(LOGPROB_FLOOR, value),
                    "bytes": list(b),
                })
        return entry

    def push(self, r):
        """Takes one generated token; returns the chunks it lets out."""
        self.generated = r.generation_tokens
        if self.plan.logprobs and r.token not in self.eos:
            self.lps.append((len(self.text), self._entry(r.token, r.logprobs)))
        self.text += r.text
        cut = min((i for i in (self.text.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.text = self.text[:cut]
            self.lps = [(at, e) for at, e in self.lps if at < cut]
            self.finished, self.finish_reason = True, "stop"
            return []
        if r.finish_reason is not None:
            self.finished, self.finish_reason = True, r.finish_reason
            return []
        return self._flush(len(self.text) - self.hold) if self.streaming else []

    def _flush(self, upto, final=False):
        """A chunk with the text up to `upto` not yet streamed; in tool mode
        text from a (possibly partial) <tool_call> on waits for the end."""
        if self.tools_mode and not final:
            start = self.text.find("<tool_call>", self.sent)
            if start >= 0:
                upto = min(upto, start)
            else:
                tail = self.text[self.sent:upto]
                for k in range(min(len("<tool_call>") - 1, len(tail)), 0, -1):
                    if "<tool_call>".startswith(tail[-k:]):
                        upto -= k
                        break
        upto = max(upto, self.sent)
        piece = self.text[self.sent:upto]
        ready = self.unsent
        while ready < len(self.lps) and (final or self.lps[ready][0] < upto):
            ready += 1
        entries = [e for _, e in self.lps[self.unsent:ready]]
        self.sent, self.unsent = upto, ready
        if not piece and not entries:
            return []
        return [self._chunk({"content": piece}, entries=entries)]

    def _chunk(self, delta, finish=None, entries=None):
        choice = {"index": self.index, "delta": delta, "finish_reason": finish}
        if entries is not None and self.plan.logprobs:
            choice["logprobs"] = {"content": entries, "refusal": None}
        text = delta.get("content") or "" if self.index == 0 else ""
        return {"choices": [choice], "text": text}

    def finish(self):
        """Parses tool calls; while streaming, the chunks left to send."""
        if self.tools_mode:
            outside, self.calls = parse_tool_calls(self.text)
            # parallel_tool_calls false: one call per turn, as OpenAI's models
            # make (a free model may write several blocks; the first counts).
            if not self.plan.parallel:
                self.calls = self.calls[:1]
        else:
            outside, self.calls = self.text, []
        self.content = outside.strip() if self.calls else outside
        if self.calls and self.finish_reason == "stop":
            self.finish_reason = "tool_calls"
        if not self.streaming:
            return []
        events = []
        if self.calls:
            # Text outside the calls, then each call whole: clients
            # accumulate deltas, and one per call is a valid split.
            rest = outside[self.sent:].rstrip()
            entries = [e for _, e in self.lps[self.unsent:]]
            self.unsent = len(self.lps)
            if rest or entries:
                events.append(self._chunk({"content": rest}, entries=entries))
            for i, call in enumerate(self.calls):
                events.append(self._chunk({"tool_calls": [dict(call, index=i)]}))
        else:
            events.extend(self._flush(len(self.text), final=True))
        events.append(self._chunk({}, finish=self.finish_reason))
        return events

    def message(self):
        """The choice in a chat completion's shape."""
        message = {
            "role": "assistant",
            "content": None if self.calls and not self.content else self.content,
            "refusal": None,
        }
        if self.calls:
            message["tool_calls"] = self.calls
        return {
            "index": self.index,
            "message": message,
            "logprobs": {"content": [e for _, e in self.lps], "refusal": None}
            if self.plan.logprobs
            else None,
            "finish_reason": self.finish_reason,
        }
