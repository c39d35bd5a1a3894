"""Throughput and latency of chat at 1, 4 and 16 concurrent requests: over HTTP vs the engine in-process.

Prints requests/s, output tokens/s and p50/p95 latency for (a) the reference server over real HTTP
and (b) the same model's engine called in-process, measured side by side in one run, with ratios.

    .venv/bin/python bench/serve_bench.py                 # the bundled SmolLM2-135M-Instruct
    .venv/bin/python bench/serve_bench.py --model DIR     # any local model dir or .gguf
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_impl.bootstrap import bundled_sources  # noqa: E402
from reference_impl.engine import SamplingParams, TextModel, load_text_model  # noqa: E402
from reference_impl.settings import Settings  # noqa: E402
from tests.support.server import running_server  # noqa: E402

PROMPT = "Write two sentences about the sea."


@dataclass
class Figures:
    requests: int
    seconds: float
    tokens: int
    latencies: list[float]

    def row(self) -> str:
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        return f"{self.requests / self.seconds:7.2f} req/s {self.tokens / self.seconds:8.1f} tok/s  p50 {statistics.median(lat):6.2f}s  p95 {p95:6.2f}s"


async def _run(concurrency: int, total: int, one: "callable") -> Figures:  # type: ignore[valid-type]
    latencies: list[float] = []
    tokens = 0
    queue = list(range(total))

    async def worker() -> None:
        nonlocal tokens
        while queue:
            i = queue.pop()
            start = time.perf_counter()
            produced = await one(i)  # not `tokens += await ...`: that reads `tokens` before the await
            tokens += produced
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Figures(total, time.perf_counter() - start, tokens, latencies)


async def bench_http(base: str, model: str, concurrency: int, total: int, max_tokens: int) -> Figures:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        async def one(i: int) -> int:
            body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens, "seed": i, "temperature": 0.8}
            response = await client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            return int(response.json()["usage"]["completion_tokens"])

        return await _run(concurrency, total, one)


async def bench_engine(model: TextModel, concurrency: int, total: int, max_tokens: int) -> Figures:
    prompt = model.render_chat([{"role": "user", "content": PROMPT}])

    async def one(i: int) -> int:
        last = 0
        async for delta in model.generate(prompt, SamplingParams(max_tokens=max_tokens, temperature=0.8, seed=i), chat=True):
            last = delta.completion_tokens
        return last

    return await _run(concurrency, total, one)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    path = args.model or bundled_sources()[0].path
    print(f"model: {path}  max_tokens={args.max_tokens}")
    with tempfile.TemporaryDirectory() as data:
        with running_server(Settings(insecure_local=True, data_dir=Path(data), models=[path])) as srv:
            name = httpx.get(f"{srv.base_url}/v1/models").json()["data"][0]["id"]
            engine_model = load_text_model(path)
            try:
                asyncio.run(bench_engine(engine_model, 1, 1, 4))  # warm-up
                asyncio.run(bench_http(srv.base_url, name, 1, 1, 4))
                for level in args.levels:
                    total = max(8, 2 * level)
                    http = asyncio.run(bench_http(srv.base_url, name, level, total, args.max_tokens))
                    raw = asyncio.run(bench_engine(engine_model, level, total, args.max_tokens))
                    ratio = (http.tokens / http.seconds) / (raw.tokens / raw.seconds)
                    print(f"c={level:<3} http   {http.row()}")
                    print(f"c={level:<3} engine {raw.row()}")
                    print(f"c={level:<3} http/engine tokens/s ratio {ratio:.2f}")
            finally:
                engine_model.close()


if __name__ == "__main__":
    main()
