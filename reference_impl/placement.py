"""Where a model runs and in which number format: the serve options --device, --dtype and --quantize resolved.

Float32 on the CPU is the exact reference path. Accelerators compute in bfloat16 (float16 where bfloat16 is
not supported, and on MPS). Weight-only int8/int4 is a CPU path (see quantization.py) and computes in
bfloat16, which its kernels are vectorised for. ``auto`` keeps a GGUF file's precision on a CPU: a Q4 file
is served from int4 weights, a Q8 file from int8, anything else in full precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from reference_impl.quantization import WeightMode, gguf_weight_mode

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]
DtypeChoice = Literal["auto", "float32", "bfloat16", "float16"]
QuantizeChoice = Literal["auto", "none", "int8", "int4"]


class PlacementError(ValueError):
    """The asked device or number format cannot be used on this machine."""


@dataclass(frozen=True)
class EngineOptions:
    """The operator's choices; every field may stay ``auto``."""

    device: DeviceChoice = "auto"
    dtype: DtypeChoice = "auto"
    quantize: QuantizeChoice = "auto"


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    weights: WeightMode

    @property
    def label(self) -> str:
        return f"{self.device.type}/{str(self.dtype).removeprefix('torch.')}/{self.weights}"


def resolve_device(choice: DeviceChoice) -> torch.device:
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise PlacementError("--device cuda: torch sees no CUDA device (is this a CPU build of torch?)")
    if choice == "mps" and not torch.backends.mps.is_available():
        raise PlacementError("--device mps: torch sees no MPS device")
    return torch.device(choice)


def resolve(options: EngineOptions, weights_path: Path | None, *, text_model: bool) -> Placement:
    """The placement of one model; ``weights_path`` is its .gguf file, if it is one (it decides ``auto`` weights)."""
    device = resolve_device(options.device)
    weights = _weights(options.quantize, device, weights_path if text_model else None)
    return Placement(device, _dtype(options.dtype, device, weights), weights)


def _weights(choice: QuantizeChoice, device: torch.device, gguf: Path | None) -> WeightMode:
    if choice == "none":
        return "full"
    if choice == "auto":
        return gguf_weight_mode(gguf) if device.type == "cpu" and gguf is not None else "full"
    if device.type != "cpu":
        raise PlacementError(f"--quantize {choice} runs on CPU kernels; on {device.type} use --quantize none (bf16/fp16 weights)")
    return choice


def _dtype(choice: DtypeChoice, device: torch.device, weights: WeightMode) -> torch.dtype:
    if weights != "full" and choice not in ("auto", "bfloat16", "float32"):
        raise PlacementError(f"--quantize {weights} runs with float32 or bfloat16 activations, not {choice}")
    if choice != "auto":
        dtype: torch.dtype = getattr(torch, choice)
        if device.type == "mps" and dtype == torch.bfloat16:
            raise PlacementError("--dtype bfloat16 is not supported on mps; use float16")
        return dtype
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32 if weights == "full" else torch.bfloat16
