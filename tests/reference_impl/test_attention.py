"""The decode-step attention computes what SDPA computes: grouped heads, padding masks, or no mask."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from reference_impl.attention import decode_attention


class _Layer(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


@pytest.mark.parametrize("masked", [True, False])
def test_decode_attention_matches_sdpa(masked: bool) -> None:
    torch.manual_seed(0)
    batch, kv_heads, length, dim = 8, 2, 11, 16
    query = torch.randn(batch, kv_heads * 3, 1, dim)
    key, value = torch.randn(batch, kv_heads, length, dim), torch.randn(batch, kv_heads, length, dim)
    mask = None
    if masked:  # left padding of 0..7 positions per row, SDPA's boolean form (True: attend)
        mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
        for row in range(batch):
            mask[row, ..., :row] = False
    ours, _ = decode_attention(_Layer(), query, key, value, mask, scaling=0.25)
    theirs, _ = sdpa_attention_forward(_Layer(), query, key, value, mask, scaling=0.25)
    assert ours.shape == theirs.shape == (batch, 1, kv_heads * 3, dim)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_prefill_queries_are_left_to_sdpa() -> None:
    torch.manual_seed(1)
    query, key, value = torch.randn(1, 6, 5, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    ours, _ = decode_attention(_Layer(), query, key, value, None)
    theirs, _ = sdpa_attention_forward(_Layer(), query, key, value, None)
    assert torch.equal(ours, theirs)
