"""One decode step's attention on a CPU: torch SDPA (what transformers calls) vs reference_impl.attention.

Shapes of SmolLM2-135M (9 query heads over 3 KV heads, head size 64) in bfloat16 with a left-padding mask,
for batches of 1 to 16 rows; median of 200 calls each, on one thread.

    .venv/bin/python bench/attention_bench.py [--cached 80]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_impl.attention import decode_attention  # noqa: E402


class _Layer(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


def median_us(call: object, repeat: int = 200) -> float:
    for _ in range(20):
        call()  # type: ignore[operator]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    parser = argparse.ArgumentParser()
    parser.add_argument("--cached", type=int, default=80, help="cached positions")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 2, 4, 16])
    args = parser.parse_args()
    torch.set_num_threads(1)
    layer = _Layer()
    for rows in args.rows:
        query = torch.randn(rows, 9, 1, 64, dtype=torch.bfloat16)
        key, value = (torch.randn(rows, 3, args.cached, 64, dtype=torch.bfloat16) for _ in range(2))
        mask = torch.ones(rows, 1, 1, args.cached, dtype=torch.bool)
        mask[:, ..., : args.cached // 8] = False
        sdpa = median_us(lambda: sdpa_attention_forward(layer, query, key, value, mask))
        ours = median_us(lambda: decode_attention(layer, query, key, value, mask))
        print(f"rows={rows:<3} SDPA {sdpa:7.0f} us   decode_attention {ours:7.0f} us   ratio {sdpa / ours:5.1f}x  (per layer, {args.cached} cached)")


if __name__ == "__main__":
    main()
