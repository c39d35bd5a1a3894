"""Engine replicas on Ray: N processes that each hold the loaded models, behind the one HTTP front.

The front (the Serve ingress, reference_impl/ray_serve.py) keeps everything with state: the registry,
keys, datasets, tasks, lifecycle. Each replica is a Ray actor holding engines only. The runtime's loader
returns a proxy model whose load has finished on every replica, so a version is ``ready`` only once every
replica serves it; unload and delete go to all of them. Requests go to the least busy ready replica that
holds the model. Ray restarts a killed replica (``max_restarts=-1``); a monitor sees its new incarnation
and loads the desired models into it again before routing to it. Requests that a dying replica held end
with ``not_ready`` (503, Retry-After) instead of hanging.

A replica on another node fetches a package it does not find on disk from the front by digest
(``GET /llmos/v1/packages/{digest}`` and ``GET /llmos/v1/blobs/{digest}``) and verifies every byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from llmos_std.manifest import PackageManifest
from llmos_std.discovery import ReplicaHealth, ReplicaState
from reference_impl.engine import (
    EmbedInput,
    EmbeddingModel,
    EngineError,
    EngineOptions,
    EngineUnavailable,
    Grammar,
    ModelLoadError,
    Prompt,
    SamplingParams,
    SchedulerStats,
    TextModel,
    _locate,
)

log = logging.getLogger("llmos.replicas")
MONITOR_INTERVAL_S = 0.5


ReplicaUnavailable = EngineUnavailable


@dataclass(frozen=True)
class PackageSource:
    """Where a replica that does not see the front's disk pulls packages from."""

    base_url: str
    api_key: str | None = None


class EngineReplica:
    """One engine process (a Ray actor). Its methods are called by the front's ReplicaPool only."""

    def __init__(self, options: dict[str, str], cache_dir: str) -> None:
        self._options = EngineOptions(**options)  # type: ignore[arg-type]
        self._cache = Path(cache_dir)
        self._models: dict[str, TextModel | EmbeddingModel] = {}
        self.incarnation = secrets.token_hex(8)

    def ping(self) -> tuple[str, list[str]]:
        return self.incarnation, sorted(self._models)

    async def load(self, digest: str, kind: str, package_dir: str, weights: str, source: PackageSource | None) -> dict[str, Any]:
        if digest not in self._models:
            self._models[digest] = await asyncio.to_thread(self._load, digest, kind, Path(package_dir), weights, source)
        model = self._models[digest]
        if isinstance(model, TextModel):
            return model.facts
        return {"context_length": model.context_length, "dimensions": model.dimensions}

    def _load(self, digest: str, kind: str, package_dir: Path, weights: str, source: PackageSource | None) -> TextModel | EmbeddingModel:
        from reference_impl import engine

        if not package_dir.is_dir():  # another node: fetch the package from the front by digest
            if source is None:
                raise ModelLoadError(f"{package_dir} is not on this node and no package source is configured")
            package_dir = pull_package(source, digest, self._cache)
        path = package_dir / weights if weights else package_dir
        if kind == "embedding":
            return engine.load_embedding_model(path, options=self._options)
        return engine.load_text_model(path, options=self._options)

    async def unload(self, digest: str) -> None:
        model = self._models.pop(digest, None)
        if model is not None:
            await asyncio.to_thread(model.close)

    async def generate(
        self, digest: str, prompt: Prompt, params: SamplingParams, chat: bool, grammar: Grammar | None, top_logprobs: int | None
    ) -> AsyncGenerator[Any, None]:
        model = self._models.get(digest)
        if not isinstance(model, TextModel):
            raise ReplicaUnavailable(f"model {digest} is not loaded on this replica")
        stream = model.generate(prompt, params, chat=chat, grammar=grammar, top_logprobs=top_logprobs)
        try:
            async for delta in stream:
                yield delta
        finally:
            await stream.aclose()

    async def embed(self, digest: str, texts: list[EmbedInput]) -> tuple[list[list[float]], int]:
        model = self._models.get(digest)
        if not isinstance(model, EmbeddingModel):
            raise ReplicaUnavailable(f"model {digest} is not loaded on this replica")
        return await asyncio.to_thread(model.embed, texts)


def pull_package(source: PackageSource, digest: str, cache: Path) -> Path:
    """Fetches a package by digest into ``cache/<hex>`` (atomically) and verifies the manifest and every blob."""
    import httpx

    target = cache / digest.removeprefix("sha256:")
    if target.is_dir():
        return target
    headers = {"Authorization": f"Bearer {source.api_key}"} if source.api_key else {}
    cache.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=source.base_url, headers=headers, timeout=600) as client:
        response = client.get(f"/llmos/v1/packages/{digest}")
        response.raise_for_status()
        manifest = PackageManifest.model_validate_json(response.content)
        if manifest.digest() != digest:
            raise ModelLoadError(f"the manifest served for {digest} has digest {manifest.digest()}")
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".pull-"))
        try:
            for entry in manifest.files:
                destination = staging / entry.path
                destination.parent.mkdir(parents=True, exist_ok=True)
                sha = hashlib.sha256()
                with client.stream("GET", f"/llmos/v1/blobs/{entry.digest}") as blob, destination.open("wb") as out:
                    blob.raise_for_status()
                    for chunk in blob.iter_bytes(1 << 20):
                        sha.update(chunk)
                        out.write(chunk)
                if f"sha256:{sha.hexdigest()}" != entry.digest:
                    raise ModelLoadError(f"{entry.path}: the bytes served do not match {entry.digest}")
            (staging / "manifest.json").write_bytes(response.content)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


@dataclass
class _Replica:
    name: str
    actor: Any
    state: ReplicaState = "starting"
    incarnation: str | None = None
    models: list[str] = field(default_factory=list)
    in_flight: int = 0
    detail: str | None = None


@dataclass(frozen=True)
class _Wanted:
    digest: str
    kind: str
    package_dir: str
    weights: str
    """The weights file inside the package for a GGUF model; empty: load the directory."""

    def call(self, actor: Any, source: PackageSource | None) -> Any:
        return actor.load.remote(self.digest, self.kind, self.package_dir, self.weights, source)


class ReplicaPool:
    """The front's view of the replicas: lifecycle on every one, routing, health, restarts."""

    def __init__(
        self, count: int, options: EngineOptions, *, source: PackageSource | None = None, cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        per_replica = threads or max(1, (os.cpu_count() or 1) // count)
        cache = str(cache_dir or Path(tempfile.gettempdir()) / "llmos-replica-cache")
        options_dict = {"device": options.device, "dtype": options.dtype, "quantize": options.quantize}
        # The thread count must be in the environment when the worker process starts: torch reads it on import.
        threads_env = {"LLMOS_TORCH_THREADS": str(per_replica), "OMP_NUM_THREADS": str(per_replica),
                       "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        actor_class = ray.remote(EngineReplica).options(
            max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=1000, runtime_env={"env_vars": threads_env},
            num_gpus=1 if options.device == "cuda" else 0,  # one GPU per replica: Ray sets CUDA_VISIBLE_DEVICES
        )
        self._replicas = [_Replica(f"engine-{i}", actor_class.remote(options_dict, cache)) for i in range(count)]
        self._source = source
        self._wanted: dict[str, _Wanted] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="llmos-replica-monitor", daemon=True)
        self._monitor.start()

    # ------------------------------------------------------------ lifecycle

    def load(self, digest: str, kind: str, package_dir: Path, weights: str = "") -> dict[str, Any]:
        """Loads on every replica; returns the engine's facts. Fails (and unloads again) if any replica fails."""
        wanted = _Wanted(digest, kind, str(package_dir), weights)
        with self._lock:
            self._wanted[digest] = wanted
        calls = [wanted.call(replica.actor, self._source) for replica in self._replicas]
        try:
            facts = [ray.get(call) for call in calls]
        except Exception as exc:
            self.unload(digest)
            raise ModelLoadError(f"a replica could not load {digest}: {_cause(exc)}") from None
        self._refresh()
        return dict(facts[0])

    def unload(self, digest: str) -> None:
        with self._lock:
            self._wanted.pop(digest, None)
        for replica in self._replicas:
            try:
                ray.get(replica.actor.unload.remote(digest), timeout=60)
            except Exception as exc:  # a dead replica holds nothing; it restarts empty
                log.warning("unload of %s on %s: %s", digest, replica.name, _cause(exc))
        self._refresh()

    # ------------------------------------------------------------ routing

    def _pick(self, digest: str, avoid: set[str]) -> _Replica:
        with self._lock:
            able = [r for r in self._replicas if r.state == "ready" and digest in r.models and r.name not in avoid]
            if not able:
                raise ReplicaUnavailable("no replica holding this model is ready; retry shortly")
            chosen = min(able, key=lambda r: r.in_flight)
            chosen.in_flight += 1
            return chosen

    def _done(self, replica: _Replica) -> None:
        with self._lock:
            replica.in_flight -= 1

    def _suspect(self, replica: _Replica) -> None:
        """A call failed as if the replica were gone: route nothing more to it until the monitor has seen it."""
        with self._lock:
            if replica.state == "ready":
                replica.state, replica.detail = "restarting", "a request failed on it"

    async def generate(
        self, digest: str, prompt: Prompt, params: SamplingParams, *, chat: bool, grammar: Grammar | None, top_logprobs: int | None
    ) -> AsyncGenerator[Any, None]:
        """Streams from one replica. Until its first delta the request moves to another replica if that one fails."""
        avoid: set[str] = set()
        while True:
            replica = self._pick(digest, avoid)
            stream = replica.actor.generate.options(num_returns="streaming").remote(digest, prompt, params, chat, grammar, top_logprobs)
            started = False
            try:
                async for ref in stream:
                    try:
                        delta = await ref
                    except Exception as exc:
                        error = _engine_error(exc, replica)
                        if not isinstance(error, ReplicaUnavailable):
                            raise error from None
                        self._suspect(replica)
                        if started:
                            raise error from None
                        break  # nothing was sent yet: try another replica
                    started = True
                    yield delta
                else:
                    return
            finally:
                self._done(replica)
                ray.cancel(stream)
            avoid.add(replica.name)

    def embed(self, digest: str, texts: list[EmbedInput]) -> tuple[list[list[float]], int]:
        """Blocking (the embeddings route calls models from a worker thread); moves to another replica on failure."""
        avoid: set[str] = set()
        while True:
            replica = self._pick(digest, avoid)
            try:
                result: tuple[list[list[float]], int] = ray.get(replica.actor.embed.remote(digest, texts))
                return result
            except Exception as exc:
                error = _engine_error(exc, replica)
                if not isinstance(error, ReplicaUnavailable):
                    raise error from None
                self._suspect(replica)
            finally:
                self._done(replica)
            avoid.add(replica.name)

    # ------------------------------------------------------------ health

    def health(self) -> list[ReplicaHealth]:
        with self._lock:
            return [ReplicaHealth(id=r.name, state=r.state, models=list(r.models), detail=r.detail) for r in self._replicas]

    @property
    def ready(self) -> bool:
        """LLMOS-HLTH-003's rule: every replica ready, or restarting while another one serves."""
        with self._lock:
            states = [r.state for r in self._replicas]
        return "ready" in states and all(state in ("ready", "restarting") for state in states)

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(r.state == "ready" for r in self._replicas):
                    return True
            time.sleep(0.1)
        return False

    def _watch(self) -> None:
        while not self._closing.wait(MONITOR_INTERVAL_S):
            self._refresh()

    def _refresh(self) -> None:
        for replica in self._replicas:
            try:
                incarnation, models = ray.get(replica.actor.ping.remote(), timeout=5)
            except Exception as exc:
                with self._lock:
                    if replica.state != "starting":
                        replica.state, replica.detail = "restarting", f"unreachable: {type(_cause(exc)).__name__}"
                continue
            if incarnation != replica.incarnation:
                self._restore(replica, incarnation, models)
            else:
                with self._lock:  # the same process answers: a suspicion was wrong (or a failed reload is not retried)
                    replica.models = models
                    if replica.state == "restarting":
                        replica.state, replica.detail = "ready", None

    def _restore(self, replica: _Replica, incarnation: str, models: list[str]) -> None:
        """A new replica process (first start or a restart by Ray): load what every replica should hold."""
        with self._lock:
            wanted = [w for w in self._wanted.values() if w.digest not in models]
            replica.state = "starting" if replica.incarnation is None else "restarting"
        try:
            for item in wanted:
                ray.get(item.call(replica.actor, self._source))
        except Exception as exc:
            with self._lock:
                replica.state, replica.detail = "failed", f"reload failed: {_cause(exc)}"
            return
        _, models = ray.get(replica.actor.ping.remote(), timeout=5)
        with self._lock:
            replica.incarnation, replica.models, replica.state, replica.detail = incarnation, models, "ready", None

    def close(self) -> None:
        self._closing.set()
        self._monitor.join(timeout=5)
        for replica in self._replicas:
            ray.kill(replica.actor, no_restart=True)


def _cause(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _engine_error(exc: BaseException, replica: _Replica) -> EngineError:
    cause = _cause(exc)
    if isinstance(cause, EngineError) and not isinstance(cause, ReplicaUnavailable):
        return cause
    log.warning("replica %s failed a request: %r", replica.name, cause)
    return ReplicaUnavailable(f"the engine replica serving this request stopped ({type(cause).__name__}); retry shortly")


class RemoteTextModel(TextModel):
    """A text model whose weights live on the replicas: tokenizer and template here, generation there."""

    def __init__(self, pool: ReplicaPool, digest: str, path: Path, facts: dict[str, Any]) -> None:
        from transformers import AutoTokenizer

        directory, extra = _locate(path)
        self._pool, self._digest = pool, digest
        self.placement_label = str(facts["placement"])
        self._front(AutoTokenizer.from_pretrained(directory, **extra), facts["kind"], int(facts["context_length"]),
                    list(facts["eos_ids"]), int(facts["logits_size"]))

    @property
    def stats(self) -> SchedulerStats:
        return SchedulerStats()

    async def generate(
        self, prompt: Prompt, params: SamplingParams, *, chat: bool, grammar: Grammar | None = None, top_logprobs: int | None = None,
    ) -> AsyncGenerator[Any, None]:
        # As TextModel.generate: PromptTooLong before anything is queued. The grammar was checked by the route.
        self.check_fits(self.count_prompt_tokens(prompt, chat=chat), params.max_tokens)
        stream = self._pool.generate(self._digest, prompt, params, chat=chat, grammar=grammar, top_logprobs=top_logprobs)
        try:
            async for delta in stream:
                yield delta
        finally:
            await stream.aclose()

    def close(self) -> None:
        self._pool.unload(self._digest)


class RemoteEmbeddingModel(EmbeddingModel):
    """An embedding model whose weights live on the replicas."""

    def __init__(self, pool: ReplicaPool, digest: str, path: Path, facts: dict[str, Any]) -> None:
        from transformers import AutoTokenizer

        directory, extra = _locate(path)
        self._pool, self._digest = pool, digest
        self._tokenizer = AutoTokenizer.from_pretrained(directory, **extra)
        self.context_length = int(facts["context_length"])
        self.dimensions = int(facts["dimensions"])
        self._lock = threading.Lock()

    def embed(self, texts: list[EmbedInput]) -> tuple[list[list[float]], int]:
        return self._pool.embed(self._digest, texts)

    def close(self) -> None:
        self._pool.unload(self._digest)
