"""Builders for tiny, randomly initialised but real transformers models used by the test suite.

Each builder writes a complete local model directory (safetensors weights, an offline-trained tokenizer,
configs) in a few seconds; the directory appears atomically so a finished build can simply be reused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertModel,
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

SEED = 1234
BPE_VOCAB_SIZE = 448
WORDPIECE_VOCAB_SIZE = 400

# A few hundred words of plain English so the tokenizers learn real merges.
CORPUS = """
The quick brown fox jumps over the lazy dog. A small model can still learn how words are split.
Paris is the capital of France, and Berlin is the capital of Germany. Rome is in Italy.
The weather today is sunny with a light wind from the west. Tomorrow it may rain in the morning.
Please write a short story about a robot who learns to paint the sea at night.
Once upon a time there was a little house by the river where an old man lived with his cat.
Every morning he walked to the market to buy bread, cheese, apples and fresh milk.
The cat liked to sleep in the sun near the window and watch the birds in the garden.
Science helps us understand the world: physics, chemistry, biology and the stars above us.
Computers read numbers and letters; programs tell them what to do, step by step, one line at a time.
A good answer is short, clear and kind. A bad answer is long, vague and rude.
Translate the following sentence into French. Summarize the text below in one sentence.
Question: what is the largest ocean on Earth? Answer: the Pacific Ocean is the largest.
Question: how many days are in a week? Answer: there are seven days in a week.
The children played football in the park until the evening, then they went home for dinner.
Music, art and stories make people happy; they share ideas across time and language.
Water boils at one hundred degrees and freezes at zero degrees on the Celsius scale.
The train leaves the station at nine o'clock and arrives in the city two hours later.
She opened the book, read the first page and smiled, because the story began with a dragon.
Keep your answers honest and your code tested; small steps make large systems safe.
""".strip()

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Files every finished build holds (a build directory only appears, by rename, once complete).
_MARKERS = ("config.json", "model.safetensors", "tokenizer.json")


def _corpus_lines() -> list[str]:
    return [line for line in CORPUS.splitlines() if line]


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte (the ByteLevel alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _train_byte_bpe(specials: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus_lines(), trainer=trainer)
    return tokenizer


def _wordpiece_vocab() -> dict[str, int]:
    """A WordPiece vocabulary built by counting, not trained: the tokenizers WordPiece trainer breaks ties
    differently from run to run. Every character (initial and ## continuation) plus the commonest words."""
    words = re.findall(r"\w+|[^\w\s]", CORPUS.lower())
    chars = sorted(set("".join(words)))
    counts = Counter(words)
    common = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *common]
    return {token: i for i, token in enumerate(tokens[:WORDPIECE_VOCAB_SIZE])}


def _unprintable_byte_tokens(tokenizer: Tokenizer) -> list[int]:
    """Ids of the single-byte tokens a random model should not emit (non-ASCII and control bytes but newline)."""
    mapping = _byte_to_unicode()
    allowed = set(range(0x20, 0x7F)) | {0x0A}
    ids = []
    for byte, char in mapping.items():
        token_id = tokenizer.token_to_id(char)
        if byte not in allowed and token_id is not None:
            ids.append(token_id)
    return ids


def _suppress_via_constant_dim(
    embedding: torch.Tensor, lm_head: torch.Tensor, out_projections: list[torch.Tensor], suppressed: list[int]
) -> None:
    """Make `suppressed` tokens (eos, specials, stray bytes) practically impossible for a random model.

    Hidden dimension 0 is a constant positive channel: every token embedding holds 0.3 there and no layer writes
    to it (its rows in the residual output projections are zeroed), so the final RMS-normalised state is always
    positive there. Suppressed tokens get -20 on that channel in lm_head, everything else 0, while the remaining
    lm_head columns are scaled up so the next-token distribution is varied and depends on the context.
    """
    with torch.no_grad():
        embedding[:, 0] = 0.3
        for weight in out_projections:
            weight[0, :] = 0.0
        lm_head.normal_(0.0, 0.3)
        lm_head[:, 0] = 0.0
        lm_head[suppressed, :] = 0.0
        lm_head[suppressed, 0] = -20.0


def _atomic_build(dest: Path, build: Callable[[Path], None]) -> Path:
    dest = Path(dest)
    if all((dest / name).is_file() for name in _MARKERS):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        build(work)
        try:
            os.replace(work, dest)
        except OSError:
            if not all((dest / name).is_file() for name in _MARKERS):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _id(tokenizer: Tokenizer, token: str) -> int:
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise ValueError(f"{token!r} is not in the vocabulary")
    return int(token_id)


def _generation_config(**ids: int) -> Any:
    return GenerationConfig(**ids)  # type: ignore[no-untyped-call]


def _wrap(tokenizer: Tokenizer, **special: Any) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, clean_up_tokenization_spaces=False, **special
    )


def build_tiny_llama(dest: Path, *, with_chat_template: bool = True) -> Path:
    """LlamaForCausalLM (64 hidden, 2 layers, 4 heads, 512 positions) with a ChatML template; eos = <|im_end|>."""

    def build(out: Path) -> None:
        torch.manual_seed(SEED)
        raw = _train_byte_bpe(["<|endoftext|>", "<pad>", "<|im_start|>", "<|im_end|>"])
        bos, pad = _id(raw, "<|endoftext|>"), _id(raw, "<pad>")
        im_start, im_end = _id(raw, "<|im_start|>"), _id(raw, "<|im_end|>")
        raw.post_processor = processors.TemplateProcessing(
            single="<|endoftext|> $A", pair="<|endoftext|> $A $B", special_tokens=[("<|endoftext|>", bos)]
        )
        tokenizer = _wrap(
            raw,
            bos_token="<|endoftext|>",
            eos_token="<|im_end|>",
            pad_token="<pad>",
            additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        )
        if with_chat_template:
            tokenizer.chat_template = CHATML_TEMPLATE
        config = LlamaConfig(
            vocab_size=raw.get_vocab_size(),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=bos,
            eos_token_id=im_end,
            pad_token_id=pad,
            tie_word_embeddings=False,
        )
        model = LlamaForCausalLM(config)
        layers = model.model.layers
        _suppress_via_constant_dim(
            model.model.embed_tokens.weight,
            model.lm_head.weight,
            [layer.self_attn.o_proj.weight for layer in layers] + [layer.mlp.down_proj.weight for layer in layers],
            [bos, pad, im_start, im_end, *_unprintable_byte_tokens(raw)],
        )
        model.generation_config = _generation_config(bos_token_id=bos, eos_token_id=im_end, pad_token_id=pad)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return _atomic_build(dest, build)


def build_tiny_gpt2(dest: Path) -> Path:
    """GPT2LMHeadModel (64 hidden, 2 layers, 4 heads, 256 positions), no chat template; eos = <|endoftext|>."""

    def build(out: Path) -> None:
        torch.manual_seed(SEED + 1)
        raw = _train_byte_bpe(["<|endoftext|>", "<pad>"])
        eos, pad = _id(raw, "<|endoftext|>"), _id(raw, "<pad>")
        tokenizer = _wrap(raw, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<pad>")
        config = GPT2Config(
            vocab_size=raw.get_vocab_size(),
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=256,
            bos_token_id=eos,
            eos_token_id=eos,
            pad_token_id=pad,
            tie_word_embeddings=False,
        )
        model = GPT2LMHeadModel(config)
        # GPT-2's final LayerNorm has a bias: pinning channel 0 to exactly 1.0 makes suppression exact.
        with torch.no_grad():
            model.transformer.ln_f.weight[0] = 0.0
            model.transformer.ln_f.bias[0] = 1.0
            head = model.lm_head.weight
            head.normal_(0.0, 0.3)
            head[:, 0] = 0.0
            suppressed = [eos, pad, *_unprintable_byte_tokens(raw)]
            head[suppressed, :] = 0.0
            head[suppressed, 0] = -40.0
        model.generation_config = _generation_config(bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return _atomic_build(dest, build)


def build_tiny_t5(dest: Path) -> Path:
    """T5ForConditionalGeneration (64 d_model, 2+2 layers); the tokenizer appends </s>; decoder starts at <pad>."""

    def build(out: Path) -> None:
        torch.manual_seed(SEED + 2)
        raw = _train_byte_bpe(["<pad>", "</s>", "<unk>"])
        pad, eos = _id(raw, "<pad>"), _id(raw, "</s>")
        raw.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)]
        )
        tokenizer = _wrap(raw, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
        config = T5Config(
            vocab_size=raw.get_vocab_size(),
            d_model=64,
            d_kv=16,
            d_ff=128,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            relative_attention_num_buckets=16,
            pad_token_id=pad,
            eos_token_id=eos,
        )
        config.decoder_start_token_id = pad
        model = T5ForConditionalGeneration(config)
        # T5 always ties lm_head to the shared embedding, so the constant channel lives in that one matrix:
        # ordinary tokens (and <pad>, the decoder start) carry +1.0 on it, suppressed tokens -40 and nothing else.
        # The decoder only ever reads ordinary tokens and no decoder sublayer writes channel 0 (their outputs
        # are also scaled down so the channel stays a large share of the normalised state), so suppressed
        # logits stay hugely negative.
        suppressed = [eos, _id(raw, "<unk>"), *_unprintable_byte_tokens(raw)]
        with torch.no_grad():
            shared = model.shared.weight
            shared.normal_(0.0, 0.3)
            shared[:, 0] = 1.0
            shared[suppressed, :] = 0.0
            shared[suppressed, 0] = -40.0
            blocks: Any = model.decoder.block
            for block in blocks:
                for weight in (
                    block.layer[0].SelfAttention.o.weight,
                    block.layer[1].EncDecAttention.o.weight,
                    block.layer[2].DenseReluDense.wo.weight,
                ):
                    weight.mul_(0.1)
                    weight[0, :] = 0.0
        model.generation_config = _generation_config(
            eos_token_id=eos, pad_token_id=pad, decoder_start_token_id=pad
        )
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return _atomic_build(dest, build)


def build_tiny_bert_embedder(dest: Path) -> Path:
    """A BertModel (32 hidden, 2 layers) in sentence-transformers layout: mean pooling, then L2 normalisation."""

    def build(out: Path) -> None:
        torch.manual_seed(SEED + 3)
        raw = Tokenizer(models.WordPiece(_wordpiece_vocab(), unk_token="[UNK]"))
        raw.normalizer = normalizers.BertNormalizer(lowercase=True)
        raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        raw.decoder = decoders.WordPiece()
        cls, sep = _id(raw, "[CLS]"), _id(raw, "[SEP]")
        raw.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
        )
        tokenizer = _wrap(
            raw, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]"
        )
        tokenizer.model_max_length = 128
        config = BertConfig(
            vocab_size=raw.get_vocab_size(),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=128,
            pad_token_id=_id(raw, "[PAD]"),
        )
        BertModel(config).save_pretrained(out)
        tokenizer.save_pretrained(out)
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]
        pooling = {
            "word_embedding_dimension": config.hidden_size,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        }
        (out / "modules.json").write_text(json.dumps(modules, indent=2))
        (out / "1_Pooling").mkdir()
        (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
        (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))

    return _atomic_build(dest, build)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "llama": build_tiny_llama,
    "gpt2": build_tiny_gpt2,
    "t5": build_tiny_t5,
    "bert": build_tiny_bert_embedder,
}


def cached_build(kind: str, root: Path) -> Path:
    """Build (or reuse) the tiny model `kind` ("llama", "gpt2", "t5", "bert") under `root / f"tiny-{kind}"`."""
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {sorted(BUILDERS)}") from None
    return builder(Path(root) / f"tiny-{kind}")
