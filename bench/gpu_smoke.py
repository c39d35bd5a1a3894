"""Device smoke: serve the bundled SmolLM2 on an accelerator and print c=1 / c=16 output tokens/s.

Runs ``llmos-ref serve --device DEVICE`` (bfloat16 on CUDA, float16 on MPS: the auto dtype), checks that a
seeded request answers identically twice (the per-row generators sample on the host), then measures
chat at temperature 0 with 32 output tokens, 16 requests per level, median of three runs. Exits non-zero
when the device is missing or a check fails, so one command tells whether the GPU path works.

    .venv/bin/python bench/gpu_smoke.py                   # --device cuda
    .venv/bin/python bench/gpu_smoke.py --device mps
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_bench import level, process  # noqa: E402
from tests.support.server import free_port  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda", choices=["cuda", "mps", "cpu"])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_smoke: torch sees no CUDA device", file=sys.stderr)
        return 2
    from reference_impl.bootstrap import bundled_sources

    model_path = args.model or bundled_sources()[0].path
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        command = [sys.executable, "-m", "reference_impl.cli", "serve", "--insecure-local", "--port", str(port),
                   "--data-dir", data, "--model", str(model_path), "--device", args.device]
        with process(command, f"{base}/llmos/v1/health/ready"):
            model = next(m["id"] for m in httpx.get(f"{base}/v1/models").json()["data"] if "chat" in m["capabilities"])
            body = {"model": model, "messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 24, "seed": 11, "temperature": 0.9}
            first, again = (httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120).json() for _ in range(2))
            same = first["choices"][0]["message"]["content"] == again["choices"][0]["message"]["content"]
            print(f"device {args.device}; seeded answer repeats: {same}; text: {first['choices'][0]['message']['content']!r}")
            asyncio.run(level(base, model, 2, 4, 8))  # warm-up
            for concurrency in (1, 16):
                runs = [asyncio.run(level(base, model, concurrency, 16, 32)) for _ in range(args.runs)]
                print(f"c={concurrency:<3} {statistics.median(runs):7.1f} tok/s  (runs: {', '.join(f'{r:.1f}' for r in runs)})", flush=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
