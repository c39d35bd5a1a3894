"""Soak: mixed traffic against one server for N minutes; throughput and RSS before and after.

The server runs as its own process (``llmos-ref serve`` on the bundled models by default), so its RSS is
its own. Traffic, from 6 concurrent clients: chat, streamed chat, streams cancelled after a few chunks,
completions, embeddings, structured outputs, bad requests (unknown model, malformed JSON, over-long
prompts), and every 45 s a lifecycle round trip (unload + load of the embedding model). A fixed probe
(8 chat requests at c=4, 32 tokens, greedy) measures output tokens/s at the start, every few minutes and
at the end; it runs alone (the traffic pauses), three times each, and the median is reported.

    .venv/bin/python bench/soak_bench.py                  # 10 minutes
    .venv/bin/python bench/soak_bench.py --minutes 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import free_port  # noqa: E402

PROBE_BODY = {"messages": [{"role": "user", "content": "Write two sentences about the sea."}], "max_tokens": 32, "temperature": 0}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def probe(client: httpx.AsyncClient, model: str) -> float:
    """Output tokens/s of 8 greedy chat requests at concurrency 4; median of three rounds."""
    rounds = []
    for _ in range(3):
        queue = list(range(8))
        tokens = 0

        async def worker() -> None:
            nonlocal tokens
            while queue:
                queue.pop()
                response = await client.post("/v1/chat/completions", json={"model": model, **PROBE_BODY})
                response.raise_for_status()
                produced = int(response.json()["usage"]["completion_tokens"])
                tokens += produced

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(4)))
        rounds.append(tokens / (time.perf_counter() - start))
    return statistics.median(rounds)


async def one_mixed(client: httpx.AsyncClient, chat: str, embed: str, rng: random.Random, counts: dict[str, int]) -> None:
    kind = rng.choice(["chat", "stream", "cancel", "completion", "embed", "structured", "bad"])
    counts[kind] = counts.get(kind, 0) + 1
    message = [{"role": "user", "content": rng.choice(["Hello!", "Name a fruit.", "Count to five.", "What is rain?"])}]
    try:
        if kind == "chat":
            await client.post("/v1/chat/completions", json={"model": chat, "messages": message, "max_tokens": rng.randint(4, 48)})
        elif kind in ("stream", "cancel"):
            body = {"model": chat, "messages": message, "max_tokens": 64, "stream": True}
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                seen = 0
                async for _ in response.aiter_lines():
                    seen += 1
                    if kind == "cancel" and seen >= 6:
                        break  # the client goes away mid-stream
        elif kind == "completion":
            await client.post("/v1/completions", json={"model": chat, "prompt": "Once upon a time", "max_tokens": 16})
        elif kind == "embed":
            await client.post("/v1/embeddings", json={"model": embed, "input": [f"text {rng.random()}" for _ in range(rng.randint(1, 16))]})
        elif kind == "structured":
            schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}
            await client.post("/v1/chat/completions", json={"model": chat, "messages": message, "max_tokens": 24,
                                                             "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}})
        else:
            await rng.choice([
                lambda: client.post("/v1/chat/completions", json={"model": "no-such-model", "messages": message}),
                lambda: client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}),
                lambda: client.post("/v1/chat/completions", json={"model": chat, "messages": [{"role": "user", "content": "x " * 9000}]}),
            ])()
    except httpx.HTTPError:
        counts["client_error"] = counts.get("client_error", 0) + 1


async def lifecycle(client: httpx.AsyncClient, embed_name: str, version: str, counts: dict[str, int]) -> None:
    path = f"/llmos/v1/models/{embed_name}/versions/{version}"
    await client.post(f"{path}/unload")
    for _ in range(200):  # unload drains in the background; load is refused until it is done
        if (await client.get(path)).json()["state"] == "installed":
            break
        await asyncio.sleep(0.1)
    await client.post(f"{path}/load")
    counts["lifecycle"] = counts.get("lifecycle", 0) + 1


async def soak(base: str, pid: int, minutes: float, probe_every_s: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        models = (await client.get("/llmos/v1/models")).json()["data"]
        served = (await client.get("/v1/models")).json()["data"]
        chat = next(m["id"] for m in served if "chat" in m["capabilities"])
        embed = next(m["id"] for m in served if "embeddings" in m["capabilities"])
        embed_version = next(v["version"] for m in models if m["name"] == embed for v in m["versions"] if v["active"])
        await probe(client, chat)  # warm-up
        start_rss, start_tps = rss_mib(pid), await probe(client, chat)
        print(f"t=  0.0 min  probe {start_tps:6.1f} tok/s  RSS {start_rss:7.1f} MiB", flush=True)
        rng = random.Random(7)
        counts: dict[str, int] = {}
        began = time.monotonic()
        next_probe, next_lifecycle = began + probe_every_s, began + 45
        while time.monotonic() - began < minutes * 60:
            stop_at = min(next_probe, began + minutes * 60)

            async def client_loop() -> None:
                nonlocal next_lifecycle
                while time.monotonic() < stop_at:
                    if time.monotonic() >= next_lifecycle:
                        next_lifecycle += 45
                        await lifecycle(client, embed, embed_version, counts)
                    await one_mixed(client, chat, embed, rng, counts)

            await asyncio.gather(*(client_loop() for _ in range(6)))
            await asyncio.sleep(2)  # let cancelled rows and the lifecycle settle before measuring
            for _ in range(100):  # the embedding model may still be reloading: a load would share the probe's cores
                listed = (await client.get("/llmos/v1/models")).json()["data"]
                if all(v["state"] in ("ready", "installed", "failed") for m in listed for v in m["versions"]):
                    break
                await asyncio.sleep(0.2)
            tps = await probe(client, chat)
            print(f"t={(time.monotonic() - began) / 60:5.1f} min  probe {tps:6.1f} tok/s  RSS {rss_mib(pid):7.1f} MiB  "
                  f"requests {sum(v for k, v in counts.items() if k != 'client_error')}", flush=True)
            next_probe += probe_every_s
        end_rss = rss_mib(pid)
        print(f"traffic: {dict(sorted(counts.items()))}")
        print(f"throughput: start {start_tps:.1f} -> end {tps:.1f} tok/s ({100 * (tps / start_tps - 1):+.1f}%)")
        print(f"RSS: start {start_rss:.1f} -> end {end_rss:.1f} MiB ({100 * (end_rss / start_rss - 1):+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--probe-every", type=float, default=150.0, help="seconds between probes")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra argument for llmos-ref serve (repeatable)")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        command = [sys.executable, "-m", "reference_impl.cli", "serve", "--insecure-local", "--port", str(port), "--data-dir", data, *args.serve_arg]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{base}/llmos/v1/health/ready", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not become ready")
                time.sleep(1)
            print(f"server pid {server.pid} on {base}; soaking {args.minutes} min")
            asyncio.run(soak(base, server.pid, args.minutes, args.probe_every))
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
