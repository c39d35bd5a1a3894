"""Decode-step attention for causal models: one query per row, two small matmuls instead of SDPA's kernel.

On a CPU, torch's SDPA sends a one-token query with a padding mask and grouped KV heads to its flash kernel,
which is built for long queries: for 16 rows, 9 heads over 3 KV heads and 80 cached positions it took
392 us per layer where ``softmax(q @ k.T) @ v`` on the grouped layout takes 246 us, and 758 vs 367 us at
300 positions (``bench/attention_bench.py``); SmolLM2 has 30 layers. Below MIN_ROWS rows SDPA is faster,
and prefill (many queries per row) keeps SDPA too.

Registered with transformers' attention and mask interfaces as ``llmos_decode``; the mask is SDPA's
boolean mask (True: attend), so both paths see the same positions.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "llmos_decode"
MIN_ROWS = 6
"""Below this many rows SDPA's one fused call wins (about 10 small ops cost more than its kernel saves)."""


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query [B, H, 1, D], key/value [B, KV, T, D] (not repeated) -> output [B, 1, H, D] as SDPA's integration returns."""
    if query.shape[2] != 1 or query.shape[0] < MIN_ROWS or dropout or kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None:
        output: tuple[torch.Tensor, None] = sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
        return output
    batch, heads, _, dim = query.shape
    kv_heads, length = key.shape[1], key.shape[2]
    scale = scaling if scaling is not None else dim**-0.5
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)  # head h reads KV head h // groups
    scores = torch.matmul(grouped, key.transpose(-1, -2)) * scale  # [B, KV, G, T]
    if attention_mask is not None:
        mask = attention_mask[:, :, -1, :length].reshape(attention_mask.shape[0], 1, 1, length)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores.float(), dim=-1).to(value.dtype)
    out = torch.matmul(probs, value)  # [B, KV, G, D]
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def install(model: Any) -> bool:
    """Switches a causal model that uses SDPA to ``llmos_decode``; False (and nothing changed) otherwise."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(NAME, decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True
