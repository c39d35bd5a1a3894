"""The model engine: loads local models (transformers directories or GGUF) and serves text and embeddings.

With `batching.py` it is the only part of the reference server that touches torch/transformers; the server
sees just the types and loaders below.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import secrets
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from reference_impl.batching import (
    CausalAdapter,
    Delta,
    EngineError,
    ModelAdapter,
    Request,
    SamplingParams,
    Scheduler,
    SchedulerStats,
    Seq2SeqAdapter,
    TokenLogprob,
)
from reference_impl import attention, compute
from reference_impl.architectures import runnable
from reference_impl.placement import EngineOptions, Placement
from reference_impl.placement import resolve as placement_of
from reference_impl.quantization import quantize_model, settle
from reference_impl.constraints import ConstraintError, Grammar, Vocabulary
from reference_impl.textstream import TextStream

__all__ = [
    "ChatTemplateError",
    "ConstraintError",
    "Delta",
    "Grammar",
    "EmbedInput",
    "EmbeddingModel",
    "EngineError",
    "EngineOptions",
    "EngineUnavailable",
    "ModelLoadError",
    "Prompt",
    "PromptTooLong",
    "SamplingParams",
    "SchedulerStats",
    "TextModel",
    "TokenLogprob",
    "detect_kind",
    "load_embedding_model",
    "load_text_model",
]

ModelKind = Literal["causal", "seq2seq", "embedding"]
logger = logging.getLogger(__name__)
_CPU = torch.device("cpu")

# Used when neither the config nor the tokenizer states a usable context length (T5's relative positions).
FALLBACK_CONTEXT_LENGTH = 512
EMBED_BATCH = 32
_TOKENIZER_UNBOUNDED = 1_000_000  # transformers' "no limit" model_max_length is a huge sentinel
# sentence-transformers' pooling flags, in the order it concatenates the pooled vectors.
_POOLING_MODES = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
    ("pooling_mode_lasttoken", "lasttoken"),
)


class PromptTooLong(EngineError):
    """The prompt plus the requested completion does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, max_tokens: int, context_length: int) -> None:
        super().__init__(
            f"prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds the context length "
            f"of {context_length} tokens"
        )
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_length = context_length


class EngineUnavailable(EngineError):
    """No engine can take the request now (a replica died while serving it, or is restarting): retry shortly."""


class ModelLoadError(EngineError):
    """The files cannot be loaded as a model of the expected kind (or would need remote code)."""


class ChatTemplateError(ValueError):
    """The model has no chat template, or its template rejected these messages (a client error, not a 500)."""


Prompt = str | list[int]
"""Text, or token ids of the model's own vocabulary."""
EmbedInput = str | tuple[int, ...]
"""Text, or token ids (a tuple, so that repeated inputs are embedded once)."""


class TextModel:
    """A loaded causal or seq2seq model behind a batching scheduler."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        kind: Literal["causal", "seq2seq"],
        context_length: int,
        max_batch: int,
        batch_wait_s: float,
        placement: Placement | None = None,
    ) -> None:
        self.placement = placement or Placement(_CPU, torch.float32, "full")
        device = self.placement.device
        generation = getattr(model, "generation_config", None)
        eos_ids = _ids(getattr(generation, "eos_token_id", None)) | _ids(tokenizer.eos_token_id)
        pad_id = _first(tokenizer.pad_token_id, getattr(generation, "pad_token_id", None), min(eos_ids, default=0))
        adapter: ModelAdapter
        if kind == "causal":
            adapter = CausalAdapter(model, pad_id, device=device)
        else:
            start = _first(
                getattr(generation, "decoder_start_token_id", None), model.config.decoder_start_token_id, pad_id
            )
            adapter = Seq2SeqAdapter(model, pad_id, start, device=device)
        self._scheduler = Scheduler(adapter, eos_ids=eos_ids, max_batch=max_batch, batch_wait_s=batch_wait_s)
        output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        # out_features, not weight.shape: a quantized head holds packed codes instead of a weight matrix.
        logits_size = int(output.out_features) if output is not None else int(model.config.vocab_size)
        self._front(tokenizer, kind, context_length, sorted(eos_ids), logits_size)

    def _front(
        self, tokenizer: Any, kind: Literal["causal", "seq2seq"], context_length: int, eos_ids: list[int], logits_size: int
    ) -> None:
        """What the HTTP side needs besides the weights: the tokenizer, the template, the vocabulary's facts."""
        self.kind = kind
        self.context_length = context_length
        self._tokenizer = tokenizer
        template = getattr(tokenizer, "chat_template", None)
        self.has_chat_template = isinstance(template, str) and bool(template)
        self._template_has_developer = self.has_chat_template and "developer" in str(template)
        self._template_takes_tools = self.has_chat_template and "tools" in str(template)
        self._eos_ids = eos_ids
        self._logits_size = logits_size
        self._vocabulary: Vocabulary | None = None

    @property
    def facts(self) -> dict[str, Any]:
        """What a front for this model elsewhere (another process) needs to know about it."""
        return {"kind": self.kind, "context_length": self.context_length, "eos_ids": self._eos_ids,
                "logits_size": self._logits_size, "placement": self.placement.label}

    @property
    def template_takes_tools(self) -> bool:
        """Whether the chat template renders a ``tools`` list itself (else the caller describes them in a message)."""
        return self._template_takes_tools

    def _vocab(self) -> Vocabulary:
        if self._vocabulary is None:  # built on the first constrained request: most never need it
            self._vocabulary = Vocabulary(self._tokenizer, self._logits_size, self._eos_ids)
        return self._vocabulary

    def check_grammar(self, grammar: Grammar) -> None:
        """Raises ConstraintError when the grammar's schemas cannot be enforced for this model."""
        self._vocab().check(grammar)

    def token_text(self, token: int) -> str:
        """One token as text; special tokens (end of sequence) are empty."""
        return self._decode([token])

    @property
    def stats(self) -> SchedulerStats:
        return self._scheduler.stats

    def render_chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        """The model's chat template applied to `messages`, ending with the assistant generation prompt."""
        import jinja2

        if not self.has_chat_template:
            raise ChatTemplateError("this model has no chat template")
        if not self._template_has_developer:
            messages = [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]
        try:
            extra = {"tools": tools} if tools else {}
            rendered = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"the chat template rejected the messages: {exc}") from exc
        return str(rendered)

    def count_prompt_tokens(self, prompt: Prompt, *, chat: bool) -> int:
        return len(self._encode(prompt, chat=chat))

    @property
    def vocab_size(self) -> int:
        return int(len(self._tokenizer))

    def _encode(self, prompt: Prompt, *, chat: bool) -> list[int]:
        if not isinstance(prompt, str):
            return list(prompt)  # already tokenized by the client, with the model's vocabulary (checked by the route)
        # A rendered chat prompt already holds its special tokens; a plain prompt gets the model's own (bos...).
        ids = list(self._tokenizer(prompt, add_special_tokens=not chat)["input_ids"])
        if not ids:
            # An empty prompt is valid (OpenAI generates from the document boundary); a model whose
            # tokenizer adds nothing (GPT-2) starts from its boundary token instead of an empty tensor.
            boundary = self._tokenizer.bos_token_id if self._tokenizer.bos_token_id is not None else self._tokenizer.eos_token_id
            if boundary is not None:
                ids = [int(boundary)]
        return ids

    def text_token_ids(self, text: str) -> list[int]:
        """The tokens of a piece of text on its own, without special tokens (token counts and cuts in pipelines and tasks)."""
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode_text(self, ids: list[int]) -> str:
        return self._decode(ids)

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def check_fits(self, prompt_tokens: int, max_tokens: int) -> None:
        """Raises PromptTooLong when the prompt plus max_tokens exceeds the context length."""
        if prompt_tokens + max_tokens > self.context_length:
            raise PromptTooLong(prompt_tokens, max_tokens, self.context_length)

    async def generate(
        self, prompt: Prompt, params: SamplingParams, *, chat: bool, grammar: Grammar | None = None, top_logprobs: int | None = None,
    ) -> AsyncGenerator[Delta, None]:
        """Streams the completion delta by delta; closing the iterator early cancels the row.

        PromptTooLong is raised on the first iteration, before anything is queued.
        """
        ids = self._encode(prompt, chat=chat)
        self.check_fits(len(ids), params.max_tokens)
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Delta | EngineError] = asyncio.Queue()

        def deliver(item: Delta | EngineError) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, item)

        generator = torch.Generator()
        generator.manual_seed(params.seed if params.seed is not None else secrets.randbits(63))
        constraint = self._vocab().matcher(grammar) if grammar is not None else None
        request = Request(ids, params, generator, TextStream(self._decode, params.stop), deliver, constraint=constraint, top_logprobs=top_logprobs)
        self._scheduler.submit(request)
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, EngineError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            request.cancel()

    def close(self) -> None:
        self._scheduler.close()


@dataclass(frozen=True)
class _Pooling:
    modes: tuple[str, ...]  # in sentence-transformers' concatenation order
    normalize: bool


class EmbeddingModel:
    """A sentence-transformers style encoder: transformer, pooling, optional L2 normalisation."""

    def __init__(
        self, model: Any, tokenizer: Any, pooling: _Pooling, context_length: int, *, device: torch.device = _CPU
    ) -> None:
        self._model = model
        self._device = device
        self._tokenizer = tokenizer
        self._pooling = pooling
        self.context_length = context_length
        self.dimensions = int(model.config.hidden_size) * len(pooling.modes)
        self._accepted = set(_forward_params(model))
        self._lock = threading.Lock()  # one forward at a time: torch already uses every core

    def count_tokens(self, text: EmbedInput) -> int:
        """Exact token count, special tokens included and not truncated (so callers can refuse long input)."""
        return len(text) if isinstance(text, tuple) else len(self._tokenizer(text)["input_ids"])

    @property
    def vocab_size(self) -> int:
        return int(len(self._tokenizer))

    def embed(self, texts: list[EmbedInput]) -> tuple[list[list[float]], int]:
        """One vector per text (inputs longer than the context are truncated) and the total token count.

        Repeated texts are embedded once: rows of one batch are not bitwise equal on every CPU kernel, and
        identical inputs must get identical vectors. Every input still counts towards the token total.
        """
        unique = list(dict.fromkeys(texts))
        vectors: dict[EmbedInput, list[float]] = {}
        tokens: dict[EmbedInput, int] = {}
        with self._lock:
            for start in range(0, len(unique), EMBED_BATCH):
                chunk = unique[start : start + EMBED_BATCH]
                chunk_vectors, chunk_tokens = compute.run(self._embed_batch, chunk)
                vectors.update(zip(chunk, chunk_vectors))
                tokens.update(zip(chunk, chunk_tokens))
        return [vectors[t] for t in texts], sum(tokens[t] for t in texts)

    def close(self) -> None:
        """Waits for a running forward pass, then drops the weights so unload really frees memory."""
        with self._lock:
            self._model = None

    @torch.inference_mode()
    def _embed_batch(self, texts: list[EmbedInput]) -> tuple[list[list[float]], list[int]]:
        if texts and isinstance(texts[0], tuple):  # token ids as given: no special tokens added
            ids = [list(t)[: self.context_length] for t in texts if isinstance(t, tuple)]
            batch = self._tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        else:
            batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt")
        inputs = {k: v.to(self._device) for k, v in batch.items() if k in self._accepted}
        hidden = self._model(**inputs).last_hidden_state.float().cpu()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        counts = mask.sum(dim=1).clamp(min=1.0)
        pooled = []
        for mode in self._pooling.modes:
            if mode == "cls":
                pooled.append(hidden[:, 0])
            elif mode == "max":
                pooled.append(hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values)
            elif mode == "mean":
                pooled.append((hidden * mask).sum(dim=1) / counts)
            elif mode == "mean_sqrt_len":
                pooled.append((hidden * mask).sum(dim=1) / counts.sqrt())
            else:  # lasttoken (padding is on the right)
                last = batch["attention_mask"].sum(dim=1) - 1
                pooled.append(hidden[torch.arange(hidden.shape[0]), last])
        vectors = torch.cat(pooled, dim=-1)
        if self._pooling.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2.0, dim=-1)
        return vectors.tolist(), [int(n) for n in batch["attention_mask"].sum(dim=1)]


def detect_kind(path: Path) -> ModelKind:
    """What a local model path holds, from its files alone (nothing is imported or executed)."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".gguf":
            return "causal"
        raise ModelLoadError(f"{path.name}: not a model directory or .gguf file")
    if _gguf_files(path):
        return "causal"
    if (path / "modules.json").is_file():
        return "embedding"
    config = _read_json(path / "config.json")
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    architectures = [str(a) for a in config.get("architectures") or []]
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal"
    if any(a.endswith("ForConditionalGeneration") for a in architectures):
        return "seq2seq"
    if any(a.endswith("Model") for a in architectures):
        return "embedding"
    raise ModelLoadError(f"cannot tell what kind of model {path.name} holds (architectures: {architectures})")


def load_text_model(
    path: Path, *, max_batch: int = 16, batch_wait_s: float = 0.005, options: EngineOptions = EngineOptions()
) -> TextModel:
    """Loads a local causal/seq2seq transformers directory, a .gguf file, or a directory with one .gguf.

    The weights are read in float32, quantized if the placement says so, then moved to the device and dtype.
    """
    return compute.run(_load_text_model, Path(path), max_batch, batch_wait_s, options)


def _load_text_model(path: Path, max_batch: int, batch_wait_s: float, options: EngineOptions) -> TextModel:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    directory, extra = _locate(path)
    kind = detect_kind(path)
    if kind == "embedding":
        raise ModelLoadError(f"{path.name} is an embedding model, not a text generation model")
    gguf = directory / extra["gguf_file"] if "gguf_file" in extra else None
    placement = placement_of(options, gguf, text_model=True)
    auto = AutoModelForCausalLM if kind == "causal" else AutoModelForSeq2SeqLM
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, **extra)
        model: Any = auto.from_pretrained(directory, dtype=torch.float32, **extra)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load {path.name}: {exc}") from exc
    model.eval()
    if kind == "causal":
        attention.install(model)
    report = quantize_model(model, placement.weights)
    model.to(device=placement.device, dtype=placement.dtype)
    settle(model)
    logger.info("loaded %s on %s (%s)", path.name, placement.label, report.summary)
    context = _context_length(model.config, tokenizer)
    return TextModel(
        model, tokenizer, kind=kind, context_length=context, max_batch=max_batch, batch_wait_s=batch_wait_s,
        placement=placement,
    )


def load_embedding_model(path: Path, *, options: EngineOptions = EngineOptions()) -> EmbeddingModel:
    """Loads a sentence-transformers directory (modules.json + pooling config) or a bare encoder directory."""
    return compute.run(_load_embedding_model, Path(path), options)


def _load_embedding_model(path: Path, options: EngineOptions) -> EmbeddingModel:
    from transformers import AutoModel, AutoTokenizer

    directory, extra = _locate(path)
    if "gguf_file" in extra:
        raise ModelLoadError("GGUF embedding models are not supported")
    pooling = _read_pooling(directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, **extra)
        model = AutoModel.from_pretrained(directory, dtype=torch.float32, **extra)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load {path.name}: {exc}") from exc
    model.eval()
    placement = placement_of(options, None, text_model=False)
    model.to(device=placement.device, dtype=placement.dtype)
    st_config = _read_json(directory / "sentence_bert_config.json", missing_ok=True)
    context = int(st_config.get("max_seq_length") or _context_length(model.config, tokenizer))
    return EmbeddingModel(model, tokenizer, pooling, context, device=placement.device)


def _locate(path: Path) -> tuple[Path, dict[str, Any]]:
    """The directory to load from and the from_pretrained kwargs; refuses anything that needs remote code."""
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
    if path.is_file():
        return path.parent, {**common, "gguf_file": path.name}
    if not path.is_dir():
        raise ModelLoadError(f"{path} does not exist")
    ggufs = _gguf_files(path)
    if len(ggufs) > 1:
        raise ModelLoadError(f"{path.name} holds {len(ggufs)} .gguf files; name the one to load")
    if ggufs:
        return path, {**common, "gguf_file": ggufs[0].name}
    for name in ("config.json", "tokenizer_config.json"):
        if "auto_map" in _read_json(path / name, missing_ok=True):
            raise ModelLoadError(f"{path.name}/{name} asks for remote code (auto_map), which is refused")
    return path, common


def _gguf_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.gguf") if p.is_file())


def _read_json(path: Path, *, missing_ok: bool = False) -> dict[str, Any]:
    if missing_ok and not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name} is not a JSON object")
    return data


def _read_pooling(directory: Path) -> _Pooling:
    """Pooling and normalisation from modules.json; mean pooling + L2 normalisation when it is absent."""
    modules_path = directory / "modules.json"
    if not modules_path.is_file():
        return _Pooling(("mean",), normalize=True)
    try:
        modules = json.loads(modules_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read modules.json: {exc}") from exc
    types = {str(m.get("type", "")).rsplit(".", 1)[-1]: str(m.get("path", "")) for m in modules}
    normalize = "Normalize" in types
    if "Pooling" not in types:
        return _Pooling(("mean",), normalize=normalize)
    config = _read_json(directory / types["Pooling"] / "config.json")
    modes = tuple(mode for key, mode in _POOLING_MODES if config.get(key))
    known = {key for key, _ in _POOLING_MODES}
    unsupported = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in known]
    if unsupported or not modes:
        raise ModelLoadError(f"unsupported pooling configuration: {unsupported or 'no pooling mode'}")
    return _Pooling(modes, normalize=normalize)


def _context_length(config: Any, tokenizer: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _TOKENIZER_UNBOUNDED:
        return limit
    return FALLBACK_CONTEXT_LENGTH


def _ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


def _first(*values: Any) -> int:
    for value in values:
        if isinstance(value, int):
            return value
    return 0


def _forward_params(model: Any) -> list[str]:
    return list(inspect.signature(model.forward).parameters)


_AUTO_MAPPINGS = ("MODEL_MAPPING_NAMES", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES")
_GGUF_NON_ARCHITECTURES = frozenset({"general", "tokenizer"})


@functools.cache
def _known_architectures() -> tuple[frozenset[str], frozenset[str]]:
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING
    from transformers.models.auto import modeling_auto

    classes: set[str] = set()
    for mapping in _AUTO_MAPPINGS:
        for value in getattr(modeling_auto, mapping).values():
            classes.update(value if isinstance(value, (tuple, list)) else (value,))
    return frozenset(classes), frozenset(GGUF_CONFIG_MAPPING) - _GGUF_NON_ARCHITECTURES


def runnable_architecture(architecture: str, package_format: str) -> bool:
    """Whether transformers (and so this engine) has a model class, or a GGUF reader, for the architecture."""
    classes, gguf = _known_architectures()
    return runnable(architecture, package_format, classes, gguf)
