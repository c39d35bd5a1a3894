"""The engine table of issue 13, regenerated in one run: output tokens/s at c=1/4/16, medians of three runs.

Targets, each started, warmed up, measured and stopped in turn (one at a time: they share the cores):
  llmos-ref          the reference server on the bundled SmolLM2-135M-Instruct Q4_1 GGUF (default: int4 weights)
  llmos-ref exact    the same with --quantize none (float32 after dequantizing the GGUF: the reference path)
  transformers       `transformers serve --continuous-batching` on the same weights (the GGUF saved as safetensors)
  llama.cpp          `llama-server` on the same Q4_1 file, when --llama-server names a binary (or one is on PATH)
  ray x1 / ray x2    `llmos-ref serve --replicas 1|2` (Ray Serve)

Chat, temperature 0, 32 output tokens, 16 requests per level, tokens counted from `usage`.

    .venv/bin/python bench/compare_bench.py
    .venv/bin/python bench/compare_bench.py --targets llmos-ref transformers --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import free_port  # noqa: E402

PROMPT = "Write two sentences about the sea."
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "RAY_USAGE_STATS_ENABLED": "0"}
ALL_TARGETS = ["llmos-ref", "llmos-ref-exact", "transformers", "llama.cpp", "ray-x1", "ray-x2"]


async def level(base: str, model: str | None, concurrency: int, total: int, max_tokens: int) -> float:
    queue = list(range(total))
    tokens = 0
    async with httpx.AsyncClient(base_url=base, timeout=900) as client:
        async def worker() -> None:
            nonlocal tokens
            while queue:
                queue.pop()
                body: dict[str, object] = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens, "temperature": 0}
                if model is not None:
                    body["model"] = model
                response = await client.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                produced = int(response.json()["usage"]["completion_tokens"])
                tokens += produced

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tokens / (time.perf_counter() - start)


@contextmanager
def process(command: list[str], ready_url: str, *, timeout: float = 600) -> Iterator[None]:
    """Runs a server in its own process group until ``ready_url`` answers 200; ends the whole group after."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE}, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{command[:4]} exited: {log.read().decode(errors='replace')[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command[:4]} not ready")
            time.sleep(0.5)
        yield
    finally:
        for sig, wait in ((signal.SIGTERM, 45), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def gguf_as_safetensors(gguf: Path, out: Path) -> Path:
    """The GGUF's weights as a plain transformers directory (float32), for servers that cannot read GGUF."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (out / "config.json").exists():
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model.hf_quantizer = None  # transformers dequantized the GGUF on load: these are plain float32 tensors
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True).save_pretrained(out)
    return out


@contextmanager
def target(name: str, gguf: Path, work: Path, llama_server: str | None) -> Iterator[tuple[str, str | None]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ref = [sys.executable, "-m", "reference_impl.cli", "serve", "--insecure-local", "--port", str(port),
           "--data-dir", str(work / f"data-{name}"), "--model", str(gguf)]
    if name == "llmos-ref":
        command, ready, model = ref, f"{base}/llmos/v1/health/ready", "smollm2-135m-instruct"
    elif name == "llmos-ref-exact":
        command, ready, model = [*ref, "--quantize", "none"], f"{base}/llmos/v1/health/ready", "smollm2-135m-instruct"
    elif name.startswith("ray-x"):
        command, ready, model = [*ref, "--replicas", name[-1]], f"{base}/llmos/v1/health/ready", "smollm2-135m-instruct"
    elif name == "transformers":
        directory = gguf_as_safetensors(gguf, work / "smollm2-safetensors")
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(directory), "--host", "127.0.0.1",
                   "--port", str(port), "--device", "cpu", "--continuous-batching"]
        ready, model = f"{base}/health", str(directory)
    else:
        assert llama_server is not None
        command = [llama_server, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-np", "16", "-t", str(os.cpu_count() or 2),
                   "-c", str(16 * 512)]
        ready, model = f"{base}/health", None
    with process(command, ready):
        if name.startswith(("llmos", "ray")):
            served = httpx.get(f"{base}/v1/models", timeout=30).json()["data"]
            model = next(m["id"] for m in served if "chat" in m["capabilities"])
        yield base, model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None, help="a .gguf file (default: the bundled SmolLM2 Q4_1)")
    parser.add_argument("--targets", nargs="+", default=ALL_TARGETS, choices=ALL_TARGETS)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=16, help="requests per level and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--llama-server", default=shutil.which("llama-server"))
    args = parser.parse_args()
    from reference_impl.bootstrap import bundled_sources

    gguf = args.model or bundled_sources()[0].path
    targets = [t for t in args.targets if t != "llama.cpp" or args.llama_server]
    print(f"model {gguf.name}; {args.requests} requests x {args.max_tokens} tokens per level; median of {args.runs} runs; "
          f"{os.cpu_count()} cores" + ("" if args.llama_server else "; no llama-server binary (skipped)"), flush=True)
    table: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in targets:
            with target(name, gguf, Path(tmp), args.llama_server) as (base, model):
                asyncio.run(level(base, model, 2, 4, 8))  # warm-up
                table[name] = {}
                for concurrency in args.levels:
                    runs = [asyncio.run(level(base, model, concurrency, args.requests, args.max_tokens)) for _ in range(args.runs)]
                    table[name][concurrency] = statistics.median(runs)
                    print(f"{name:16} c={concurrency:<3} {table[name][concurrency]:7.1f} tok/s  (runs: {', '.join(f'{r:.1f}' for r in runs)})", flush=True)
    print()
    print("| output tok/s | " + " | ".join(f"c={c}" for c in args.levels) + " |")
    print("|---|" + "---|" * len(args.levels))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in args.levels) + " |")
    if "llmos-ref" in table:
        print()
        for other in table:
            if other != "llmos-ref":
                print(f"llmos-ref / {other}: " + ", ".join(f"c={c} {table['llmos-ref'][c] / table[other][c]:.2f}x" for c in args.levels))


if __name__ == "__main__":
    main()
