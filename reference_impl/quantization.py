"""Weight-only int8 / int4 linear layers for CPU decoding, on torch's own packed-weight kernels.

Decoding a small model on a CPU is memory-bound: every step reads every weight once. Keeping the weights
at 4 or 8 bits moves 4-8x fewer bytes than float32. The kernels are ``aten._weight_int4pack_mm_for_cpu``
(group-wise asymmetric int4, the layout of GGUF's Q4_1 blocks) and ``aten._weight_int8pack_mm``
(per-channel symmetric int8). Both ship with torch, so there is no extra dependency; torchao wraps the same
operators. They are vectorised for bfloat16 activations only (float32 activations run 10-20x slower on
them), so a quantized model computes in bfloat16. ``bench/kernels_bench.py`` prints the comparison.

Why re-quantize instead of copying GGUF blocks: transformers dequantizes a GGUF on load, and a Q4_1 block
is ``d * q + m`` with q in 0..15 where llama.cpp picked ``m`` = the block's minimum and ``d`` = its range /
15. Min-max quantization of the dequantized block with the same group size (32) therefore finds the same
q, d and m again; only the bfloat16 storage of d and m, which the kernel requires, rounds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

WeightMode = Literal["full", "int8", "int4"]
INT4_GROUP = 32
"""Weights per scale/zero pair: GGUF's Q4_0/Q4_1/Q8_0 block size."""
_INT4_ROWS = 16  # the packing kernel refuses output sizes not divisible by 16
_INT8_INPUTS = 16  # the int8 kernel returns garbage (or crashes) for input sizes not divisible by 16


class Int4Linear(torch.nn.Module):
    """``y = x @ W.T + b`` with W stored as 4-bit codes, one bfloat16 scale and zero per 32 inputs of a row."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, group: int = INT4_GROUP) -> None:
        super().__init__()
        out_features, in_features = weight.shape
        w = weight.detach().float().reshape(out_features, in_features // group, group)
        low, high = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
        scale = ((high - low) / 15).clamp(min=1e-8).to(torch.bfloat16).float()
        # w = (q - 8) * scale + zero; zero is rounded to bfloat16 first and q chosen against the stored values.
        zero = (low + 8 * scale).to(torch.bfloat16).float()
        codes = torch.round((w - zero) / scale + 8).clamp(0, 15).to(torch.int32).reshape(out_features, in_features)
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1))
        pairs = torch.stack([scale.squeeze(-1).t(), zero.squeeze(-1).t()], dim=-1)
        self.register_buffer("scales_and_zeros", pairs.contiguous().to(torch.bfloat16))
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.bfloat16))
        self.in_features, self.out_features, self.group = in_features, out_features, group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()
        y: torch.Tensor = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, self.group, self.scales_and_zeros)
        bias = self._buffers["bias"]
        if bias is not None:
            y = y + bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


class Int8Linear(torch.nn.Module):
    """``y = x @ W.T + b`` with W stored as int8 codes and one bfloat16 scale per output row."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        w = weight.detach().float().contiguous()  # a GPT-2 Conv1D weight arrives transposed
        scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8).to(torch.bfloat16).float()
        self.register_buffer("codes", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.bfloat16))
        self.out_features, self.in_features = w.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()
        y: torch.Tensor = torch.ops.aten._weight_int8pack_mm(flat, self.codes, self.scales)
        bias = self._buffers["bias"]
        if bias is not None:
            y = y + bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


def settle(model: torch.nn.Module) -> None:
    """After ``model.to(dtype)``: puts the quantized layers' scales back in bfloat16 (exact from float32/bfloat16)."""
    for module in model.modules():
        if isinstance(module, (Int4Linear, Int8Linear)):
            for name, buffer in module.named_buffers(recurse=False):
                if buffer is not None and buffer.is_floating_point():
                    setattr(module, name, buffer.to(torch.bfloat16))


@dataclass(frozen=True)
class QuantizationReport:
    mode: WeightMode
    quantized: int
    kept: int
    """Linear layers left in full precision: the output head, and any whose shape the kernel cannot take."""

    @property
    def summary(self) -> str:
        return f"{self.mode}: {self.quantized} linear layers quantized, {self.kept} kept in full precision"


def quantize_model(model: Any, mode: WeightMode) -> QuantizationReport:
    """Replaces the model's linear layers in place: int8 all but the output head; int4 the feed-forward ones.

    The head stays in the compute dtype: its error turns straight into other tokens (GGUF files keep it at
    Q6/Q8 for that reason; SmolLM2's Q4_1 file ties it to a Q8_0 embedding), and at batch sizes above one
    the int8 kernel is slower on a 49k-row head than a bfloat16 matmul. Under int4 the attention projections
    (a quarter of a block's weights) stay too: the kernel's bfloat16 zero points shift each group by up to
    0.08 of a step, and on SmolLM2 that moved the float32 path's next-token choice at 3.1% of positions with
    them quantized and at 1.3% without (teacher forcing, 224 positions), and turned "Paris" into "L'Étoile".
    """
    if mode == "full":
        return QuantizationReport(mode, 0, 0)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    quantized = kept = 0
    for parent, name, weight, bias in list(_linears(model)):
        attention = "Attention" in type(parent).__name__
        if getattr(parent, name) is head or (mode == "int4" and attention) or not _fits(weight.shape, mode):
            kept += 1
            continue
        replacement = Int4Linear(weight, bias) if mode == "int4" else Int8Linear(weight, bias)
        setattr(parent, name, replacement)
        quantized += 1
    return QuantizationReport(mode, quantized, kept)


def _fits(shape: torch.Size, mode: WeightMode) -> bool:
    out_features, in_features = shape
    if mode == "int4":
        return in_features % INT4_GROUP == 0 and out_features % _INT4_ROWS == 0
    return in_features % _INT8_INPUTS == 0


def _linears(model: torch.nn.Module) -> Iterator[tuple[torch.nn.Module, str, torch.Tensor, torch.Tensor | None]]:
    """(parent, attribute, weight [out, in], bias) of every nn.Linear and GPT-2 style Conv1D ([in, out])."""
    from transformers.pytorch_utils import Conv1D

    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.Linear):
                yield parent, name, child.weight, child.bias
            elif isinstance(child, Conv1D):
                yield parent, name, child.weight.t(), child.bias


def gguf_weight_mode(path: Any) -> WeightMode:
    """The weight mode that keeps a GGUF file's precision: int4 for 4-bit blocks, int8 for 5-8 bit, else full."""
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    for tensor in GGUFReader(str(path)).tensors:
        if len(tensor.shape) == 2:
            kind = tensor.tensor_type.name
            counts[kind] = counts.get(kind, 0) + int(tensor.n_elements)
    if not counts:
        return "full"
    dominant = max(counts, key=lambda k: counts[k])
    if dominant.startswith(("Q4", "IQ4", "Q3", "Q2", "IQ3", "IQ2")):
        return "int4"
    if dominant.startswith(("Q5", "Q6", "Q8")):
        return "int8"
    return "full"
