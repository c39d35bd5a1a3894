"""Weight-only int8/int4 layers and the serve options that choose them, down to the quality of the bundled model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from reference_impl import compute
from reference_impl.cli import main as cli_main
from reference_impl.engine import SamplingParams, TextModel, load_text_model
from reference_impl.placement import EngineOptions, PlacementError, resolve
from reference_impl.quantization import Int4Linear, Int8Linear, gguf_weight_mode, quantize_model
from tests.reference_impl.test_engine import DEFAULT_GGUF, run, text_of


def _dequantized(layer: torch.nn.Module, in_features: int) -> torch.Tensor:
    """The weight a quantized layer actually applies, read back through the kernel with an identity input."""
    return layer(torch.eye(in_features, dtype=torch.bfloat16)).float().t()


def test_int4_layer_reproduces_each_weight_within_half_a_step() -> None:
    torch.manual_seed(0)
    weight = torch.randn(64, 96)
    layer = Int4Linear(weight, None)
    groups = weight.reshape(64, 3, 32)
    step = ((groups.amax(-1) - groups.amin(-1)) / 15).unsqueeze(-1)
    error = (_dequantized(layer, 96) - weight).abs().reshape(64, 3, 32) / step
    assert float(error.max()) < 0.5 + 0.1  # rounding to the nearest code, plus bfloat16 scales and zeros


def test_int4_repacks_a_q4_1_block_without_moving_its_codes() -> None:
    # A Q4_1 block is d * q + m with q in 0..15 and both extremes used: re-quantizing finds the same codes.
    codes = torch.randint(0, 16, (32, 64)).float()
    codes[:, ::32], codes[:, 1::32] = 0, 15
    d, m = torch.full((32, 1), 0.0123), torch.full((32, 1), -0.0931)
    weight = codes * d + m
    back = _dequantized(Int4Linear(weight, None), 64)
    assert torch.equal(torch.round((back - m) / d), codes)


def test_int8_layer_is_within_half_a_step_per_row_and_keeps_bias_and_shape() -> None:
    torch.manual_seed(1)
    weight, bias = torch.randn(48, 48), torch.randn(48)
    step = weight.abs().amax(dim=1, keepdim=True) / 127
    error = (_dequantized(Int8Linear(weight, None), 48) - weight).abs()
    assert bool((error <= 0.55 * step + weight.abs() / 256).all())  # half a step, plus the bfloat16 output's rounding
    layer = Int8Linear(weight, bias)
    assert torch.allclose(layer(torch.zeros(1, 48)), bias, atol=0.01)
    x = torch.randn(2, 3, 48)
    y = layer(x)
    assert y.shape == (2, 3, 48) and y.dtype == torch.float32
    assert torch.allclose(y, torch.nn.functional.linear(x, weight, bias), rtol=0.02, atol=0.2)


def test_quantize_model_replaces_every_linear_but_the_head_and_shapes_the_kernel_refuses() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 24), torch.nn.Linear(24, 64))
    report = quantize_model(model, "int4")
    assert [type(m).__name__ for m in model] == ["Int4Linear", "Linear", "Linear"]  # 24 rows; 24 inputs
    assert (report.quantized, report.kept) == (1, 2)
    # The int8 kernel silently computes garbage for input sizes not divisible by 16: such layers stay as they are.
    assert quantize_model(torch.nn.Sequential(torch.nn.Linear(24, 24), torch.nn.Linear(48, 24)), "int8").quantized == 1


@pytest.mark.parametrize("mode", ["int4", "int8"])
def test_a_quantized_tiny_llama_keeps_its_head_and_samples_reproducibly(tiny_llama_dir: Path, mode: str) -> None:
    model = load_text_model(tiny_llama_dir, options=EngineOptions(quantize=mode))  # type: ignore[arg-type]
    try:
        assert model.placement.label == f"cpu/bfloat16/{mode}"
        layers = list(model._scheduler._adapter._model.modules())  # type: ignore[attr-defined]
        # 2 blocks x gate, up, down under int4 (attention projections stay); x q, k, v, o, gate, up, down under int8
        assert sum(isinstance(m, (Int4Linear, Int8Linear)) for m in layers) == 2 * (3 if mode == "int4" else 7)
        params = SamplingParams(max_tokens=30, seed=3)
        first = run(model, "The cat", params)
        assert text_of(first) == text_of(run(model, "The cat", params))
        assert first[-1].completion_tokens == 30 or first[-1].finish_reason == "stop"
    finally:
        model.close()


def test_the_accelerator_number_format_keeps_per_row_seeding(tiny_llama_dir: Path) -> None:
    """bfloat16 weights and activations (what CUDA gets) with the host-side per-row generators, on the CPU."""
    model = load_text_model(tiny_llama_dir, options=EngineOptions(device="cpu", dtype="bfloat16", quantize="none"))
    try:
        assert model.placement.label == "cpu/bfloat16/full"
        params = SamplingParams(max_tokens=20, seed=9, temperature=0.9)
        assert text_of(run(model, "Once", params)) == text_of(run(model, "Once", params))
        assert text_of(run(model, "Once", params)) != text_of(run(model, "Once", SamplingParams(max_tokens=20, seed=10, temperature=0.9)))
    finally:
        model.close()


def test_gpt2_conv1d_layers_are_quantized_too(tiny_gpt2_dir: Path) -> None:
    model = load_text_model(tiny_gpt2_dir, options=EngineOptions(quantize="int8"))
    try:
        layers = list(model._scheduler._adapter._model.modules())  # type: ignore[attr-defined]
        assert sum(isinstance(m, Int8Linear) for m in layers) > 0
        assert run(model, "Hello", SamplingParams(max_tokens=8, temperature=0))[-1].completion_tokens >= 1
    finally:
        model.close()


def test_auto_keeps_a_gguf_files_precision_and_none_is_the_exact_float32_path() -> None:
    assert gguf_weight_mode(DEFAULT_GGUF) == "int4"  # SmolLM2's file is Q4_1 blocks
    assert resolve(EngineOptions(), DEFAULT_GGUF, text_model=True).label == "cpu/bfloat16/int4"
    assert resolve(EngineOptions(quantize="none"), DEFAULT_GGUF, text_model=True).label == "cpu/float32/full"
    assert resolve(EngineOptions(), None, text_model=True).label == "cpu/float32/full"
    assert resolve(EngineOptions(), DEFAULT_GGUF, text_model=False).label == "cpu/float32/full"
    assert resolve(EngineOptions(dtype="bfloat16"), None, text_model=True).label == "cpu/bfloat16/full"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (EngineOptions(device="cuda"), "no CUDA device"),
        (EngineOptions(quantize="int4", dtype="float16"), "float32 or bfloat16"),
    ],
)
def test_unusable_placements_are_refused_with_a_reason(options: EngineOptions, message: str) -> None:
    if torch.cuda.is_available() and options.device == "cuda":
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(PlacementError, match=message):
        resolve(options, None, text_model=True)


def test_serve_refuses_an_absent_device_before_starting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert cli_main(["serve", "--insecure-local", "--data-dir", str(tmp_path), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


PROMPTS = [
    "What is the capital of France?", "Write a haiku about the sea.", "List three prime numbers.",
    "Explain what a CPU does.", "Who wrote Hamlet?", "Translate 'good morning' to Spanish.", "What is 12 times 7?",
    "Name a color of the rainbow.", "Give a synonym for happy.", "What is photosynthesis?",
    "Describe a cat in one sentence.", "What day comes after Monday?",
]


def _greedy_answers(model: TextModel) -> list[str]:
    async def one(question: str) -> str:
        prompt = model.render_chat([{"role": "user", "content": question}])
        params = SamplingParams(max_tokens=24, temperature=0)
        return "".join([d.text async for d in model.generate(prompt, params, chat=True)])

    async def every() -> list[str]:
        return list(await asyncio.gather(*(one(q) for q in PROMPTS)))

    return asyncio.run(every())


def _next_token_choices(model: TextModel, sequences: list[list[int]]) -> list[list[int]]:
    """The model's greedy choice after every prefix of each sequence (teacher forcing: no divergence cascade)."""
    network = model._scheduler._adapter._model  # type: ignore[attr-defined]

    def forward() -> list[list[int]]:
        with torch.inference_mode():
            return [network(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist() for ids in sequences]

    return compute.run(forward)


def test_the_bundled_models_int4_path_chooses_the_tokens_its_float32_reference_chooses() -> None:
    """The quality guard: on the float32 path's own greedy answers, how often int4 picks the same next token."""
    exact = load_text_model(DEFAULT_GGUF, options=EngineOptions(quantize="none"))
    quantized = load_text_model(DEFAULT_GGUF, options=EngineOptions(quantize="auto"))
    try:
        answers = _greedy_answers(exact)
        prompts = [exact.text_token_ids(exact.render_chat([{"role": "user", "content": q}])) for q in PROMPTS]
        sequences = [p + exact.text_token_ids(a) for p, a in zip(prompts, answers, strict=True)]
        reference, candidate = _next_token_choices(exact, sequences), _next_token_choices(quantized, sequences)
        picks = [(r[i], c[i]) for p, r, c in zip(prompts, reference, candidate, strict=True) for i in range(len(p) - 1, len(r) - 1)]
        agreement = sum(a == b for a, b in picks) / len(picks)
        assert len(picks) > 200
        assert agreement >= 0.85, f"int4 picks the float32 path's token at {agreement:.1%} of {len(picks)} positions"
    finally:
        exact.close()
        quantized.close()
