"""The kit's own deterministic tiny test package: a random causal LM written byte by byte with the stdlib.

The kit needs packages it may install, break and delete on any server; building them by hand (no torch,
no transformers) keeps the kit installable anywhere and makes every byte a pure function of the seed.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmos_std.canonical import sha256_digest
from llmos_std.manifest import MANIFEST_SCHEMA_VERSION, PackageManifest, manifest_digest

FORMAT = "safetensors"
VOCAB_BYTES = 256
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")
BOS, IM_START, EOS, PAD = range(VOCAB_BYTES, VOCAB_BYTES + len(SPECIALS))
VOCAB = VOCAB_BYTES + len(SPECIALS)
HIDDEN = 32
LAYERS = 2
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 64
CONTEXT = 2048
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Printable ASCII only: a random model that may emit any byte would produce invalid UTF-8 and stop early.
ALLOWED_BYTES = frozenset(range(0x20, 0x7F))


@dataclass(frozen=True)
class Package:
    """A package in memory: its files by path and its manifest JSON (the upload is blobs, then this)."""

    manifest: dict[str, Any]
    files: dict[str, bytes] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def digest(self) -> str:
        return manifest_digest(self.manifest)

    def renamed(self, name: str) -> Package:
        """The same files under another model name (only the manifest, and so the package digest, differ)."""
        return Package({**self.manifest, "name": name}, self.files)

    def blobs(self) -> dict[str, bytes]:
        """Digest -> bytes of every listed file."""
        return {entry["digest"]: self.files[entry["path"]] for entry in self.manifest["files"]}


# ---------------------------------------------------------------- the byte-level tokenizer


def _byte_chars() -> list[str]:
    """GPT-2's printable stand-in character for every byte (the ByteLevel alphabet), indexed by byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(VOCAB_BYTES):
        if b not in mapping:
            mapping[b] = chr(VOCAB_BYTES + extra)
            extra += 1
    return [mapping[b] for b in range(VOCAB_BYTES)]


def tokenizer_json() -> dict[str, Any]:
    """A byte-level BPE without merges: every text tokenizes (one token per byte), ids 0-255 are the bytes."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": VOCAB_BYTES + i, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, token in enumerate(SPECIALS)
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": {char: i for i, char in enumerate(_byte_chars())}, "merges": [],
        },
    }


# ---------------------------------------------------------------- architectures


Shapes = list[tuple[str, tuple[int, ...]]]


def _llama_config(hidden: int) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": hidden,
        "intermediate_size": INTERMEDIATE, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "max_position_embeddings": CONTEXT, "rms_norm_eps": 1e-6,
        "hidden_act": "silu", "rope_theta": 10000.0, "bos_token_id": BOS, "eos_token_id": EOS,
        "pad_token_id": PAD, "tie_word_embeddings": False, "torch_dtype": "float32",
    }


def _llama_shapes() -> Shapes:
    kv = KV_HEADS * (HIDDEN // HEADS)
    shapes: Shapes = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (HIDDEN,)),
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.k_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.v_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (p + "post_attention_layernorm.weight", (HIDDEN,)),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
        ]
    return shapes + [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]


def _gpt2_config(hidden: int) -> dict[str, Any]:
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": VOCAB, "n_embd": hidden,
        "n_layer": LAYERS, "n_head": HEADS, "n_positions": CONTEXT, "n_inner": INTERMEDIATE,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "bos_token_id": BOS, "eos_token_id": EOS,
        "pad_token_id": PAD, "tie_word_embeddings": False, "torch_dtype": "float32",
    }


def _gpt2_shapes() -> Shapes:
    shapes: Shapes = [("transformer.wte.weight", (VOCAB, HIDDEN)), ("transformer.wpe.weight", (CONTEXT, HIDDEN))]
    for i in range(LAYERS):
        p = f"transformer.h.{i}."
        shapes += [
            (p + "ln_1.weight", (HIDDEN,)), (p + "ln_1.bias", (HIDDEN,)),
            (p + "attn.c_attn.weight", (HIDDEN, 3 * HIDDEN)), (p + "attn.c_attn.bias", (3 * HIDDEN,)),
            (p + "attn.c_proj.weight", (HIDDEN, HIDDEN)), (p + "attn.c_proj.bias", (HIDDEN,)),
            (p + "ln_2.weight", (HIDDEN,)), (p + "ln_2.bias", (HIDDEN,)),
            (p + "mlp.c_fc.weight", (HIDDEN, INTERMEDIATE)), (p + "mlp.c_fc.bias", (INTERMEDIATE,)),
            (p + "mlp.c_proj.weight", (INTERMEDIATE, HIDDEN)), (p + "mlp.c_proj.bias", (HIDDEN,)),
        ]
    return shapes + [("transformer.ln_f.weight", (HIDDEN,)), ("transformer.ln_f.bias", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]


@dataclass(frozen=True)
class Architecture:
    config: Callable[[int], dict[str, Any]]
    shapes: Callable[[], Shapes]


ARCHITECTURES: dict[str, Architecture] = {
    "LlamaForCausalLM": Architecture(_llama_config, _llama_shapes),
    "GPT2LMHeadModel": Architecture(_gpt2_config, _gpt2_shapes),
}
"""What the kit can build, in order of preference."""


def choose(discovery: dict[str, Any] | None) -> tuple[str, str]:
    """The (architecture, format) to build for a server; ValueError saying why when there is none."""
    formats = (discovery or {}).get("accepted_formats") or []
    architectures = (discovery or {}).get("architectures") or []
    if FORMAT not in formats:
        raise ValueError(f"the kit builds {FORMAT} packages; the server accepts {sorted(map(str, formats))}")
    for name in ARCHITECTURES:
        if name in architectures:
            return name, FORMAT
    raise ValueError(f"the kit builds {', '.join(ARCHITECTURES)}; the server declares {sorted(map(str, architectures))}")


# ---------------------------------------------------------------- weights


def _tensor(name: str, shape: tuple[int, ...], rng: random.Random) -> list[float]:
    count = 1
    for dim in shape:
        count *= dim
    if name.endswith(("norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight")):
        return [1.0] * count
    if name.endswith(".bias"):
        return [0.0] * count
    return [rng.gauss(0.0, 0.3) for _ in range(count)]


def _suppress(tensors: dict[str, list[float]], architecture: str) -> None:
    """Make end-of-sequence, special and unprintable tokens unreachable, so generations run to max_tokens.

    Hidden channel 0 is held at a constant positive value up to the last norm (nothing writes to it);
    the head reads only that channel for suppressed tokens, with a large negative weight.
    """
    head = tensors["lm_head.weight"]
    for token in range(VOCAB):
        row = token * HIDDEN
        if token in ALLOWED_BYTES:
            head[row] = 0.0
        else:
            head[row : row + HIDDEN] = [-40.0] + [0.0] * (HIDDEN - 1)
    if architecture == "GPT2LMHeadModel":
        tensors["transformer.ln_f.weight"][0] = 0.0
        tensors["transformer.ln_f.bias"][0] = 1.0
        return
    embed = tensors["model.embed_tokens.weight"]
    for token in range(VOCAB):
        embed[token * HIDDEN] = 0.3
    for i in range(LAYERS):
        o_proj = tensors[f"model.layers.{i}.self_attn.o_proj.weight"]
        o_proj[0:HIDDEN] = [0.0] * HIDDEN
        down = tensors[f"model.layers.{i}.mlp.down_proj.weight"]
        down[0:INTERMEDIATE] = [0.0] * INTERMEDIATE


def safetensors(tensors: Sequence[tuple[str, tuple[int, ...], list[float]]]) -> bytes:
    """The safetensors layout: 8-byte little-endian header length, JSON header, raw little-endian float32."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    data = bytearray()
    for name, shape, values in tensors:
        start = len(data)
        data += struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [start, len(data)]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the header is padded with spaces so the data starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw + bytes(data)


def weights(architecture: str, seed: int) -> bytes:
    rng = random.Random(seed)
    shapes = ARCHITECTURES[architecture].shapes()
    tensors = {name: _tensor(name, shape, rng) for name, shape in shapes}
    _suppress(tensors, architecture)
    return safetensors([(name, shape, tensors[name]) for name, shape in shapes])


# ---------------------------------------------------------------- the package


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def build(name: str, version: str, *, architecture: str, seed: int, loadable: bool = True) -> Package:
    """One package; ``loadable=False`` declares a hidden size the weights do not have, so it installs but cannot load."""
    spec = ARCHITECTURES[architecture]
    config = spec.config(HIDDEN if loadable else HIDDEN * 2)
    files: dict[str, tuple[bytes, str]] = {
        "config.json": (_json_bytes(config), "config"),
        "generation_config.json": (_json_bytes({"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD}), "generation-config"),
        "model.safetensors": (weights(architecture, seed), "weights"),
        "tokenizer.json": (_json_bytes(tokenizer_json()), "tokenizer"),
        "tokenizer_config.json": (_json_bytes({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": SPECIALS[0], "eos_token": SPECIALS[2],
            "pad_token": SPECIALS[3], "chat_template": CHAT_TEMPLATE, "clean_up_tokenization_spaces": False,
            "model_max_length": CONTEXT,
        }), "tokenizer"),
    }
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "name": name,
        "version": version,
        "kind": "causal-lm",
        "architecture": architecture,
        "format": FORMAT,
        "files": [{"path": path, "digest": sha256_digest(data), "size": len(data), "role": role} for path, (data, role) in files.items()],
        "capabilities": ["text-generation", "chat"],
        "context_length": {"value": CONTEXT, "source": "config"},
        "license": "CC0-1.0",
        "description": "A random tiny model built by llmos-conformance for lifecycle tests; its output is gibberish.",
    }
    PackageManifest.model_validate(manifest)  # the kit's own package must be valid, or the kit is broken
    return Package(manifest, {path: data for path, (data, _role) in files.items()})
