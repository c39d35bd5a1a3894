"""The batching scheduler: one thread owns the model and serves every generation request in shared batches.

Causal models get continuous batching (new requests are prefilled and merged into the running batch between
decode steps, rows leave as they finish); seq2seq models get dynamic static batches (arrivals wait for the
running batch to end). Each row samples with its own torch.Generator, so output never depends on neighbours.

Why not the continuous batching transformers ships (``model.init_continuous_batching()`` /
``generate_batch``, transformers 5.x): its model runner samples every row of a step with one
``torch.multinomial`` call on the process RNG, seeded once per manager, and ``do_sample`` is a
manager-wide setting. A row's tokens would then depend on which other requests share its steps, so
per-request ``seed`` and the ``determinism: sequential`` claim could not hold, nor could greedy and
sampled requests share a batch; it also serves decoder-only models only (paged attention), not T5.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from reference_impl import compute
from reference_impl.textstream import TextStream

logger = logging.getLogger(__name__)

FinishReason = Literal["stop", "length"]
_CPU = torch.device("cpu")


class EngineError(Exception):
    """A failure of the model itself (not of the request)."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


@dataclass(frozen=True)
class TokenLogprob:
    """A sampled token's log probability and the most likely alternatives, from the distribution it was drawn from."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Delta:
    text: str
    finish_reason: FinishReason | None
    completion_tokens: int
    prompt_tokens: int
    logprobs: tuple[TokenLogprob, ...] = ()
    """With logprobs asked: the entries of every token sampled since the last delta."""


class Constraint(Protocol):
    """A row's grammar state (reference_impl.constraints.RowConstraint): the batcher masks and feeds it."""

    def allowed(self) -> bytes: ...
    def consume(self, token: int) -> None: ...
    @property
    def finished(self) -> bool: ...


@dataclass
class SchedulerStats:
    """Counters written by the scheduler thread only; readers see a consistent-enough snapshot."""

    max_batch_seen: int = 0
    prefills: int = 0
    decode_steps: int = 0
    tokens_generated: int = 0
    requests_finished: int = 0
    requests_cancelled: int = 0
    active: int = 0


@dataclass(eq=False)
class Request:
    """One generation row. `deliver` runs on the scheduler thread and must hand items over thread-safely."""

    prompt_ids: list[int]
    params: SamplingParams
    generator: torch.Generator
    stream: TextStream
    deliver: Callable[[Delta | EngineError], None]
    completion_tokens: int = 0
    constraint: Constraint | None = None
    """Masks every step's logits to what the grammar admits (structured outputs, tool calls)."""
    top_logprobs: int | None = None
    """None: no logprobs; otherwise each token's logprob and this many alternatives are delivered."""
    _logprobs: list[TokenLogprob] = field(default_factory=list, init=False, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()


def sample_token(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    """Greedy at temperature 0; otherwise temperature + nucleus sampling by inverse CDF with one uniform draw.

    One draw per token from the row's own generator keeps a row's random stream independent of the batch, and
    inverse-CDF selection only changes its answer if float noise moves a boundary across that draw.
    """
    if params.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.double() / params.temperature, dim=-1)
    order: torch.Tensor | None = None
    if params.top_p < 1.0:
        probs, order = torch.sort(probs, descending=True, stable=True)
        before = torch.cumsum(probs, dim=-1) - probs
        probs = probs * (before < params.top_p)
    cdf = torch.cumsum(probs, dim=-1)
    draw = torch.rand((), generator=generator, dtype=torch.float64) * cdf[-1]
    index = int(torch.searchsorted(cdf, draw.reshape(1), right=True).clamp(max=cdf.numel() - 1))
    return int(order[index]) if order is not None else index


class ModelAdapter(Protocol):
    """How the scheduler drives one model family. States are opaque to the scheduler."""

    can_join: bool

    def prefill(self, prompts: list[list[int]]) -> tuple[Any, torch.Tensor]: ...
    def step(self, state: Any, tokens: list[int]) -> torch.Tensor: ...
    def select(self, state: Any, keep: list[int]) -> Any: ...
    def merge(self, first: Any, second: Any) -> Any: ...


@dataclass
class _CausalState:
    cache: Any
    mask: torch.Tensor  # [rows, cached positions], 0 on left padding
    next_pos: torch.Tensor  # [rows], real tokens cached so far per row


class CausalAdapter:
    """Left-padded batches over a DynamicCache; explicit position ids keep every row's positions unpadded."""

    def __init__(self, model: Any, pad_id: int, *, device: torch.device = _CPU) -> None:
        self._model = model
        self._pad_id = pad_id
        self._device = device
        self.can_join = True
        self._cache_kw = _cache_keyword(model)
        accepted = inspect.signature(model.forward).parameters
        self._extra: dict[str, Any] = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> Any:
        return self._model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kw: cache},
            **self._extra,
        )

    def prefill(self, prompts: list[list[int]]) -> tuple[_CausalState, torch.Tensor]:
        ids, mask = _padded(prompts, self._pad_id, left=True, device=self._device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self._forward(ids, mask, positions, None)
        lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long, device=self._device)
        state = _CausalState(_output_cache(out), mask, lengths)
        if not all(type(layer).__name__ == "DynamicLayer" for layer in state.cache.layers):
            self.can_join = False  # sliding-window or other layers cannot be re-padded safely
        return state, _last_logits(out)

    def step(self, state: _CausalState, tokens: list[int]) -> torch.Tensor:
        ids = torch.tensor(tokens, dtype=torch.long, device=self._device).unsqueeze(1)
        state.mask = torch.cat([state.mask, state.mask.new_ones((len(tokens), 1))], dim=1)
        out = self._forward(ids, state.mask, state.next_pos.unsqueeze(1), state.cache)
        state.cache = _output_cache(out)
        state.next_pos = state.next_pos + 1
        return _last_logits(out)

    def select(self, state: _CausalState, keep: list[int]) -> _CausalState:
        index = torch.tensor(keep, dtype=torch.long, device=self._device)
        state.cache.batch_select_indices(index)
        state.mask = state.mask[index]
        state.next_pos = state.next_pos[index]
        # Drop leading columns that are padding for every remaining row, so the cache does not only grow.
        used = state.mask.any(dim=0).nonzero()
        first = int(used[0]) if used.numel() else 0
        if first and self.can_join:
            for layer in state.cache.layers:
                layer.keys = layer.keys[..., first:, :]
                layer.values = layer.values[..., first:, :]
            state.mask = state.mask[:, first:]
        return state

    def merge(self, first: _CausalState, second: _CausalState) -> _CausalState:
        width = max(first.mask.shape[1], second.mask.shape[1])

        def pad(t: torch.Tensor, dim: int) -> torch.Tensor:
            missing = width - t.shape[dim]
            if missing == 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        for mine, theirs in zip(first.cache.layers, second.cache.layers, strict=True):
            mine.keys = torch.cat([pad(mine.keys, -2), pad(theirs.keys, -2)], dim=0)
            mine.values = torch.cat([pad(mine.values, -2), pad(theirs.values, -2)], dim=0)
        first.mask = torch.cat([pad(first.mask, 1), pad(second.mask, 1)], dim=0)
        first.next_pos = torch.cat([first.next_pos, second.next_pos])
        return first


@dataclass
class _Seq2SeqState:
    encoder_hidden: torch.Tensor
    encoder_mask: torch.Tensor
    cache: Any


class Seq2SeqAdapter:
    """Encoder once per batch (right-padded), then the decoder step by step with an EncoderDecoderCache.

    Rows cannot join a running batch: T5-style relative position bias is computed from the shared decoder
    length, so a row with a shorter decoder history would see shifted positions.
    """

    can_join = False

    def __init__(self, model: Any, pad_id: int, decoder_start_id: int, *, device: torch.device = _CPU) -> None:
        self._model = model
        self._device = device
        self._pad_id = pad_id
        self._start_id = decoder_start_id
        self._cache_kw = _cache_keyword(model)

    def prefill(self, prompts: list[list[int]]) -> tuple[_Seq2SeqState, torch.Tensor]:
        from transformers import DynamicCache, EncoderDecoderCache

        ids, mask = _padded(prompts, self._pad_id, left=False, device=self._device)
        hidden = self._model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        state = _Seq2SeqState(hidden, mask, cache)
        return state, self.step(state, [self._start_id] * len(prompts))

    def step(self, state: _Seq2SeqState, tokens: list[int]) -> torch.Tensor:
        out = self._model(
            encoder_outputs=(state.encoder_hidden,),
            attention_mask=state.encoder_mask,
            decoder_input_ids=torch.tensor(tokens, dtype=torch.long, device=self._device).unsqueeze(1),
            use_cache=True,
            **{self._cache_kw: state.cache},
        )
        state.cache = _output_cache(out)
        return _last_logits(out)

    def select(self, state: _Seq2SeqState, keep: list[int]) -> _Seq2SeqState:
        index = torch.tensor(keep, dtype=torch.long, device=self._device)
        state.cache.batch_select_indices(index)
        state.encoder_hidden = state.encoder_hidden[index]
        state.encoder_mask = state.encoder_mask[index]
        return state

    def merge(self, first: _Seq2SeqState, second: _Seq2SeqState) -> _Seq2SeqState:
        raise EngineError("seq2seq batches cannot be merged")


@dataclass
class _Batch:
    rows: list[Request] = field(default_factory=list)
    last: list[int] = field(default_factory=list)  # last sampled token per row
    state: Any = None


class Scheduler:
    """Owns the model on one background thread; `submit` is safe from any thread."""

    def __init__(
        self,
        adapter: ModelAdapter,
        *,
        eos_ids: Collection[int],
        max_batch: int,
        batch_wait_s: float,
    ) -> None:
        self._adapter = adapter
        self._eos_ids = frozenset(eos_ids)
        self._max_batch = max(1, max_batch)
        self._batch_wait_s = max(0.0, batch_wait_s)
        self._pending: queue.Queue[Request | None] = queue.Queue()
        self._closing = threading.Event()
        self.stats = SchedulerStats()
        self._thread = threading.Thread(target=self._run, name="llmos-engine-scheduler", daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> None:
        if self._closing.is_set():
            raise EngineError("the model has been closed")
        self._pending.put(request)

    def close(self) -> None:
        self._closing.set()
        self._pending.put(None)  # wakes a thread blocked on an empty queue
        self._thread.join()

    def _run(self) -> None:
        batch = _Batch()
        while not self._closing.is_set():
            incoming = self._admit(batch)
            try:
                compute.run(self._iterate, batch, incoming)
            except Exception as exc:  # last resort (e.g. a failed cache re-index): fail the batch, keep serving
                self._fail(batch.rows + [row for row in incoming if row not in batch.rows], exc)
                batch = _Batch()
                self.stats.active = 0
        for row in batch.rows + self._drain():
            _safe_deliver(row, EngineError("the model has been closed"))
        self.stats.active = 0

    def _iterate(self, batch: _Batch, incoming: list[Request]) -> None:
        """One scheduling iteration, on the torch thread: drop cancelled rows, one decode step, admit arrivals."""
        with torch.inference_mode():
            self._drop(batch, [i for i, row in enumerate(batch.rows) if row.cancelled], cancelled=True)
            if batch.rows:
                self._decode(batch)
            if incoming:
                self._prefill(batch, incoming)

    def _drain(self) -> list[Request]:
        rows: list[Request] = []
        while True:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                return rows
            if item is not None:
                rows.append(item)

    def _admit(self, batch: _Batch) -> list[Request]:
        """New rows for this iteration: blocks while idle, then waits batch_wait_s for company."""
        if batch.rows and not self._adapter.can_join:
            return []
        capacity = self._max_batch - len(batch.rows)
        incoming: list[Request] = []
        deadline = None
        if not batch.rows:
            first = self._pending.get()
            if first is None:
                return []
            incoming.append(first)
            deadline = time.monotonic() + self._batch_wait_s
        while len(incoming) < capacity:
            try:
                if deadline is None:
                    item = self._pending.get_nowait()
                else:
                    item = self._pending.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                break
            incoming.append(item)
        live = [row for row in incoming if not row.cancelled]
        self.stats.requests_cancelled += len(incoming) - len(live)
        return live

    def _decode(self, batch: _Batch) -> None:
        try:
            logits = self._adapter.step(batch.state, batch.last)
        except Exception as exc:  # a model failure must not kill the thread; every affected row is told
            self._fail(batch.rows, exc)
            self.stats.active -= len(batch.rows)
            batch.rows, batch.last, batch.state = [], [], None
            return
        self.stats.decode_steps += 1
        self._advance(batch, list(range(len(batch.rows))), logits)

    def _prefill(self, batch: _Batch, incoming: list[Request]) -> None:
        try:
            state, logits = self._adapter.prefill([row.prompt_ids for row in incoming])
        except Exception as exc:  # as in _decode: only the rows of the failed prefill are affected
            self._fail(incoming, exc)
            return
        if batch.state is not None:
            # A failed merge may leave the running state half-updated, so it fails the whole batch (caught in _run).
            state = self._adapter.merge(batch.state, state)
        self.stats.prefills += 1
        self.stats.active += len(incoming)
        offset = len(batch.rows)
        batch.rows += incoming
        batch.last += [0] * len(incoming)
        batch.state = state
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(batch.rows))
        self._advance(batch, list(range(offset, len(batch.rows))), logits, logit_offset=offset)

    def _advance(self, batch: _Batch, indices: list[int], logits: torch.Tensor, logit_offset: int = 0) -> None:
        finished = []
        for i in indices:
            row = batch.rows[i]
            scores = logits[i - logit_offset]
            try:
                if row.constraint is not None:
                    scores = scores.masked_fill(~_allowed(row.constraint.allowed(), scores.numel()), float("-inf"))
                token = sample_token(scores, row.params, row.generator)
                if row.top_logprobs is not None:
                    row._logprobs.append(_logprob(scores, token, row.top_logprobs))
                batch.last[i] = token
                if self._emit(row, token):
                    finished.append(i)
            except Exception as exc:  # a row's grammar failing ends that row alone
                logger.exception("a constrained row failed", exc_info=exc)
                _safe_deliver(row, EngineError(f"generation failed: {type(exc).__name__}"))
                self.stats.active -= 1
                finished.append(i)
        self._drop(batch, finished, cancelled=False)

    def _emit(self, row: Request, token: int) -> bool:
        """Feeds one token to the row's text stream and delivers the delta; True when the row is done."""
        row.completion_tokens += 1
        self.stats.tokens_generated += 1
        finish: FinishReason | None = None
        if token in self._eos_ids:
            text, finish = row.stream.finish(), "stop"
        else:
            if row.constraint is not None:
                row.constraint.consume(token)
            text, stopped = row.stream.push(token)
            if stopped or (row.constraint is not None and row.constraint.finished):
                text, finish = (text if stopped else text + row.stream.finish()), "stop"
            elif row.completion_tokens >= row.params.max_tokens:
                text, finish = text + row.stream.finish(), "length"
        if finish is not None:  # counted before the last delta goes out, so a consumer sees settled stats
            self.stats.requests_finished += 1
            self.stats.active -= 1
        if text or finish:
            entries, row._logprobs = tuple(row._logprobs), []
            _safe_deliver(row, Delta(text, finish, row.completion_tokens, len(row.prompt_ids), entries))
        return finish is not None

    def _drop(self, batch: _Batch, indices: list[int], *, cancelled: bool) -> None:
        if not indices:
            return
        gone = set(indices)
        keep = [i for i in range(len(batch.rows)) if i not in gone]
        if cancelled:
            self.stats.requests_cancelled += len(gone)
            self.stats.active -= len(gone)
        batch.rows = [batch.rows[i] for i in keep]
        batch.last = [batch.last[i] for i in keep]
        batch.state = self._adapter.select(batch.state, keep) if keep else None

    def _fail(self, rows: list[Request], exc: Exception) -> None:
        logger.exception("generation failed for a batch of %d request(s)", len(rows), exc_info=exc)
        for row in rows:
            _safe_deliver(row, EngineError(f"generation failed: {type(exc).__name__}"))


_BIT = torch.arange(8, dtype=torch.uint8)


def _allowed(mask: bytes, size: int) -> torch.Tensor:
    """The grammar's little-endian bitmask as booleans over the logits (tokens past the mask: not allowed)."""
    bits = ((torch.frombuffer(bytearray(mask), dtype=torch.uint8).unsqueeze(1) >> _BIT) & 1).flatten().bool()
    if bits.numel() >= size:
        return bits[:size]
    return torch.cat([bits, torch.zeros(size - bits.numel(), dtype=torch.bool)])


def _logprob(scores: torch.Tensor, token: int, top: int) -> TokenLogprob:
    """Log-softmax of what the sampler saw (the masked logits) before temperature: the model's distribution over allowed tokens."""
    logprobs = torch.log_softmax(scores.double(), dim=-1)
    alternatives: tuple[tuple[int, float], ...] = ()
    if top > 0:
        possible = int(torch.isfinite(logprobs).sum())
        values, ids = torch.topk(logprobs, min(top, possible))
        alternatives = tuple((int(t), float(v)) for t, v in zip(ids, values, strict=True))
    return TokenLogprob(token, float(logprobs[token]), alternatives)


def _cache_keyword(model: Any) -> str:
    """transformers 5.x names the KV cache argument `cache`; earlier releases call it `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _output_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _padded(prompts: list[list[int]], pad_id: int, *, left: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of a batch, built on the host and moved to the device in one copy each."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        span = slice(width - len(prompt), width) if left else slice(0, len(prompt))
        ids[row, span] = torch.tensor(prompt, dtype=torch.long)
        mask[row, span] = 1
    return ids.to(device), mask.to(device)


def _last_logits(out: Any) -> torch.Tensor:
    """The last position's logits as float32 on the host, where every row samples with its own generator."""
    logits: torch.Tensor = out.logits[:, -1, :]
    return logits.float().cpu()


def _safe_deliver(row: Request, item: Delta | EngineError) -> None:
    try:
        row.deliver(item)
    except RuntimeError:  # the consumer's event loop is gone: nobody is listening any more
        row.cancel()
