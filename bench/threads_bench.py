"""Why the engine runs torch on one thread: decode-step time with one OpenMP team vs two in the process.

Each variant runs in a fresh interpreter (libgomp's state is per process):
  lone     - the step loop runs on a thread, and no other thread has run a parallel torch op;
  second   - the main thread ran torch with the default thread count first (it loads the model),
             so the process holds two OpenMP teams and libgomp throttles its spinning workers.

    .venv/bin/python bench/threads_bench.py [--rows 1 16] [--model DIR_OR_GGUF]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import os, statistics, sys, threading, time
import torch
if sys.argv[1] == "lone":
    torch.set_num_threads(1)  # the main thread gets no OpenMP team
threads = int(sys.argv[3])
sys.path.insert(0, sys.argv[4])
from transformers import AutoModelForCausalLM
from reference_impl.batching import CausalAdapter
from reference_impl.quantization import quantize_model
path = sys.argv[5]
extra = {"gguf_file": os.path.basename(path)} if path.endswith(".gguf") else {}
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path) if extra else path, dtype=torch.float32, local_files_only=True, **extra).eval()
quantize_model(model, "int4")
model.to(torch.bfloat16)
rows = int(sys.argv[2])
times = []
def loop():
    torch.set_num_threads(threads)
    adapter = CausalAdapter(model, 0)
    with torch.inference_mode():
        state, logits = adapter.prefill([[1 + (j + r) % 400 for j in range(37)] for r in range(rows)])
        for _ in range(40):
            tokens = [int(t) for t in logits.argmax(-1)]
            start = time.perf_counter()
            logits = adapter.step(state, tokens)
            times.append(time.perf_counter() - start)
thread = threading.Thread(target=loop)
thread.start(); thread.join()
print(statistics.median(times[5:]) * 1e3)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from reference_impl.bootstrap import bundled_sources

    model = args.model or bundled_sources()[0].path
    print(f"model: {model}  (int4 weights, bfloat16, {args.threads} intra-op threads; median of 35 steps)")
    for rows in args.rows:
        figures = {}
        for variant in ("lone", "second"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, variant, str(rows), str(args.threads), str(ROOT), str(model)],
                capture_output=True, text=True, check=True,
            ).stdout
            figures[variant] = float(out.strip().splitlines()[-1])
        print(f"rows={rows:<3} one team {figures['lone']:6.1f} ms/step   two teams {figures['second']:6.1f} ms/step   "
              f"ratio {figures['second'] / figures['lone']:.2f}")


if __name__ == "__main__":
    main()
