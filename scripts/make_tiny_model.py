#!/usr/bin/env python3
"""Creates tiny random-weight MLX language models for Harpoon's tests.

One checkpoint per family (qwen3, qwen3_moe, gemma3_text), each built with
mlx-lm's own model classes and loadable offline with ``mlx_lm.load(path)`` or
served with ``mlx_lm.server --model path``:

    OUT/<family>/config.json                    model_type, sizes, eos ids
    OUT/<family>/model.safetensors              float32 weights (mx.random.seed(0))
    OUT/<family>/model.safetensors.index.json
    OUT/<family>/tokenizer.json                 byte-level BPE trained on TEXT below
    OUT/<family>/tokenizer_config.json          the family's chat template and special tokens
    OUT/<family>/.harpoon-tiny-model            stamp: what made these files

Sizes: hidden 64, 2 layers, 4 attention heads, vocab = the tokenizer's size
(~520), about 0.5 MB each. The weights are random, so the text they generate is
gibberish, but it is a deterministic function of the prompt, the sampler
settings and mx.random.seed. Qwen checkpoints have untied embeddings so that
greedy text varies; Gemma 3 keeps its real tied embeddings (no lm_head).

Running twice gives byte-identical files. A family whose stamp matches this
script (its sha256 and the library versions) is skipped unless --force.

Usage: make_tiny_model.py [OUT] [--force] [--family NAME ...]
       (OUT defaults to target/test-models/)
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

# Bump on any change of what the outputs mean; the stamp also holds this
# file's sha256, so any edit regenerates the models.
SCRIPT_VERSION = 1

FAMILIES = ("qwen3", "qwen3_moe", "gemma3_text")
STAMP = ".harpoon-tiny-model"
OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
)
TRAIN_VOCAB = 512  # BPE vocabulary before Qwen's added tokens

# Shared model sizes.
HIDDEN = 64
LAYERS = 2
HEADS = 4
HEAD_DIM = 16

# English text for the BPE tokenizers (original prose, a few KB).
TEXT = """\
The harbor woke slowly on a grey morning in early spring. Fishing boats rocked
against the pier, their ropes creaking, while gulls circled overhead and called
to one another. An old man in a yellow coat walked along the wall with a flask
of tea, counting the boats as he always did. Seven had gone out before dawn;
five had come back. He was not worried yet. The sea was calm, the wind was light,
and the radio in the harbor office had said nothing about a storm.

Hello! How can I help you today? I would like to know the weather for tomorrow,
please. Tomorrow will be cloudy in the morning with some sunshine in the
afternoon. The temperature will be around twelve degrees, and there is a small
chance of rain in the evening. Thank you very much. You are welcome. Is there
anything else I can do for you? No, that is all for now. Have a good day!

To make a simple loaf of bread, you need flour, water, salt and yeast. Mix the
flour and the salt in a large bowl. Dissolve the yeast in warm water and pour it
into the flour. Stir until the dough comes together, then knead it on a floured
table for ten minutes, until it is smooth and elastic. Put the dough back in the
bowl, cover it with a cloth, and leave it somewhere warm for an hour, or until it
has doubled in size. Shape the loaf, let it rise again, and bake it in a hot
oven for about thirty five minutes. The bread is ready when it sounds hollow if
you tap the bottom.

A computer program is a list of instructions that a machine can follow. The
instructions are written in a programming language, which is then translated
into the simple operations that the processor understands. Good programs are
easy to read, easy to test, and easy to change. When a program does not behave
as expected, the programmer looks for the bug: a mistake in the logic, a wrong
assumption about the input, or a missing check. Writing small tests for every
part of a program makes it much easier to find such problems early.

A gateway sits between clients and the servers that answer their requests. It
accepts a request, decides which server should handle it, forwards the request,
and returns the answer to the client. A good gateway keeps track of which
servers are healthy, retries a request when a server fails, and stops sending
traffic to a server that is overloaded. It also measures how long each request
takes, so that the operators can see when the system becomes slow.

What is the capital of France? The capital of France is Paris. What is two plus
two? Two plus two is four. Can you write a short poem about the sea? The sea is
wide, the sea is deep, it sings the sailors off to sleep. Why is the sky blue?
Sunlight is made of many colors, and the air scatters the blue light more than
the red light, so the sky looks blue during the day.

The library was quiet except for the soft turning of pages. Students sat at long
wooden tables with their books and notes, and the librarian moved between the
shelves, returning each volume to its place. Outside, the rain had started
again, tapping gently on the tall windows. Somebody laughed quietly in the
corner and then apologized. A clock on the wall showed a quarter past four.

Numbers and dates appear everywhere: the meeting starts at 9:30 on Monday, the
train leaves from platform 3, the book costs 12 dollars, and the year has 365
days. Lists are common too: first, open the file; second, read each line;
third, count the words; and finally, print the result. Questions, answers,
stories and instructions all mix together in ordinary language.

The small robot rolled across the kitchen floor, stopped in front of the
refrigerator, and beeped twice. It had been built to carry cups and plates, but
it seemed to prefer exploring. Every night it learned a little more about the
house: where the stairs began, which doors were usually closed, and where the
cat liked to sleep. The family named it Pip, and soon nobody could remember how
they had managed without it.

Think carefully before you answer. First, read the question. Then, consider what
you already know, and what you still need to find out. Finally, give a clear and
honest answer, and say so when you are not sure. A short answer is often better
than a long one, as long as it is correct and complete.
"""

# ---------------------------------------------------------------------------
# Chat templates: the families' official templates.

QWEN3_CHAT_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""

GEMMA3_CHAT_TEMPLATE = """\
{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""

# Qwen2/Qwen3 pre-tokenizer split (as in their tokenizer.json).
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen3's added tokens after the BPE vocabulary, in its order: (content, special).
QWEN3_ADDED = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)

# Gemma 3's special tokens take the first ids (pad 0, eos 1, bos 2, unk 3 as in
# the real vocabulary; the turn markers follow).
GEMMA3_SPECIAL = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
)


# ---------------------------------------------------------------------------
# Stamps


def library_versions():
    names = ("mlx", "mlx-lm", "tokenizers", "transformers")
    return {n: metadata.version(n) for n in names}


def stamp_for(family):
    script = Path(__file__).resolve().read_bytes()
    return {
        "family": family,
        "script_version": SCRIPT_VERSION,
        "script_sha256": hashlib.sha256(script).hexdigest(),
        "versions": library_versions(),
    }


def up_to_date(path: Path, family) -> bool:
    if not all((path / f).is_file() for f in OUTPUT_FILES):
        return False
    try:
        return json.loads((path / STAMP).read_text()) == stamp_for(family)
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------
# Tokenizers


def train_tokenizer(family):
    """A byte-level BPE tokenizer trained on TEXT, with the family's tokens."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.BPE(fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    gemma = family.startswith("gemma")
    trainer = trainers.BpeTrainer(
        vocab_size=TRAIN_VOCAB,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(GEMMA3_SPECIAL) if gemma else [],
    )
    tok.train_from_iterator(TEXT.splitlines(keepends=True), trainer=trainer)

    if gemma:
        # Like Gemma's tokenizer: plain encoding starts with <bos>.
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A",
            pair="<bos> $A <bos> $B",
            special_tokens=[("<bos>", tok.token_to_id("<bos>"))],
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        for content, special in QWEN3_ADDED:
            token = AddedToken(content, special=special, normalized=False)
            if special:
                tok.add_special_tokens([token])
            else:
                tok.add_tokens([token])
    return tok


def added_tokens_decoder(tok):
    return {
        str(i): {
            "content": t.content,
            "lstrip": t.lstrip,
            "normalized": t.normalized,
            "rstrip": t.rstrip,
            "single_word": t.single_word,
            "special": t.special,
        }
        for i, t in sorted(tok.get_added_tokens_decoder().items())
    }


def tokenizer_config(family, tok):
    if family.startswith("qwen3"):
        return {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": added_tokens_decoder(tok),
            "additional_special_tokens": [c for c, _ in QWEN3_ADDED[:3]],
            "bos_token": None,
            "chat_template": QWEN3_CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "model_max_length": 131072,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            # transformers 5 rebuilds Qwen2Tokenizer from vocab+merges with
            # Qwen's own pre-tokenizer, which is the one trained here.
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        }
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added_tokens_decoder(tok),
        "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"],
        "bos_token": "<bos>",
        "chat_template": GEMMA3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<eos>",
        "model_max_length": 32768,
        "pad_token": "<pad>",
        "spaces_between_special_tokens": False,
        # Not GemmaTokenizer: that class would rebuild a SentencePiece-style
        # pipeline; this tokenizer is byte-level BPE, loaded from tokenizer.json.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }


# ---------------------------------------------------------------------------
# Model configs (HF-style config.json; mlx-lm reads the fields it knows)


def model_config(family, tok):
    vocab = tok.get_vocab_size(with_added_tokens=True)
    ids = tok.token_to_id
    if family in ("qwen3", "qwen3_moe"):
        config = {
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "head_dim": HEAD_DIM,
            "hidden_act": "silu",
            "hidden_size": HIDDEN,
            "initializer_range": 0.02,
            "intermediate_size": 128,
            "max_position_embeddings": 40960,
            "max_window_layers": LAYERS,
            "model_type": family,
            "num_attention_heads": HEADS,
            "num_hidden_layers": LAYERS,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_scaling": None,
            "rope_theta": 1000000.0,
            "sliding_window": None,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": vocab,
        }
        if family == "qwen3":
            config["architectures"] = ["Qwen3ForCausalLM"]
        else:
            config["architectures"] = ["Qwen3MoeForCausalLM"]
            config.update(
                {
                    "decoder_sparse_step": 1,
                    "mlp_only_layers": [],
                    "moe_intermediate_size": 16,
                    "norm_topk_prob": True,
                    "num_experts": 8,
                    "num_experts_per_tok": 2,
                    "output_router_logits": False,
                    "router_aux_loss_coef": 0.001,
                }
            )
        return config
    if family == "gemma3_text":
        return {
            "architectures": ["Gemma3ForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "attn_logit_softcapping": None,
            "bos_token_id": ids("<bos>"),
            # Real Gemma 3 stops on <eos> and on <end_of_turn>.
            "eos_token_id": [ids("<eos>"), ids("<end_of_turn>")],
            "final_logit_softcapping": None,
            "head_dim": HEAD_DIM,
            "hidden_activation": "gelu_pytorch_tanh",
            "hidden_size": HIDDEN,
            "initializer_range": 0.02,
            "intermediate_size": 128,
            "max_position_embeddings": 32768,
            "model_type": "gemma3_text",
            "num_attention_heads": HEADS,
            "num_hidden_layers": LAYERS,
            "num_key_value_heads": 1,
            "pad_token_id": ids("<pad>"),
            "query_pre_attn_scalar": HEAD_DIM,
            "rms_norm_eps": 1e-06,
            "rope_local_base_freq": 10000.0,
            "rope_scaling": None,
            "rope_theta": 1000000.0,
            "sliding_window": 512,
            # mlx-lm's gemma3_text indexes cache[sliding_window_pattern - 1],
            # so the pattern must not exceed the layer count: layer 0 is a
            # sliding-window layer, layer 1 a global one.
            "sliding_window_pattern": LAYERS,
            "torch_dtype": "float32",
            "use_cache": True,
            "vocab_size": vocab,
        }
    raise ValueError(f"unknown family {family}")


# ---------------------------------------------------------------------------


def build(family, dest: Path):
    import mlx.core as mx
    from mlx_lm.utils import _get_classes, save_config, save_model

    tok = train_tokenizer(family)
    config = model_config(family, tok)

    mx.random.seed(0)
    model_class, args_class = _get_classes(config)
    model = model_class(args_class.from_dict(config))
    if family == "gemma3_text":
        # Gemma 3 ties its output projection to the embeddings: save no
        # lm_head, and mlx-lm's sanitize() ties them on load.
        model.pop("lm_head")
    mx.eval(model.parameters())

    save_model(dest, model)
    save_config(dict(config), dest / "config.json")
    tok.save(str(dest / "tokenizer.json"), pretty=True)
    with open(dest / "tokenizer_config.json", "w") as f:
        json.dump(tokenizer_config(family, tok), f, indent=2, ensure_ascii=False)
        f.write("\n")
    return config


def check(dest: Path):
    """Loads the checkpoint the way users do and runs a few greedy steps."""
    from mlx_lm import load, generate
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = load(str(dest))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True
    )
    return generate(model, tokenizer, prompt, max_tokens=4, sampler=make_sampler(0.0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="target/test-models/")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--family", action="append", choices=FAMILIES, help="only these")
    args = parser.parse_args()

    # Nothing here needs the network; make sure nothing tries.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for family in args.family or FAMILIES:
        dest = out / family
        if not args.force and up_to_date(dest, family):
            print(f"tiny-model: {dest} up to date")
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{family}.", dir=out))
        tmp.chmod(0o755)  # mkdtemp makes it private
        try:
            config = build(family, tmp)
            sample = check(tmp)
            (tmp / STAMP).write_text(json.dumps(stamp_for(family), indent=2) + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
        print(
            f"tiny-model: wrote {dest} (vocab {config['vocab_size']}, "
            f"{size / 1e6:.2f} MB; greedy sample {sample!r})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
