"""Harpoon's bridge to mlx-lm, run inside the service's embedded interpreter.

One Runner per model: it loads the weights once and streams tokens for one
request at a time (the Rust side queues requests per model).
"""

import gc
import time

import mlx.core as mx
from mlx_lm import load, stream_generate
from mlx_lm.sample_utils import make_sampler


class Runner:
    def __init__(self, path):
        self.model, self.tokenizer = load(path)

    def _prompt(self, messages, enable_thinking):
        # Render to text, then encode: the template already holds any BOS.
        try:
            text = self.tokenizer.apply_chat_template(
                messages,
                add_generation_prompt=True,
                tokenize=False,
                enable_thinking=enable_thinking,
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

    def close(self):
        self.model = None
        self.tokenizer = None
        gc.collect()
        if hasattr(mx, "clear_cache"):
            mx.clear_cache()
