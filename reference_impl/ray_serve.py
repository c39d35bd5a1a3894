"""``llmos-ref serve --replicas N``: the reference server as a Ray Serve application.

One Serve deployment, the front, runs the whole HTTP API with its state (registry, keys, datasets, tasks,
lifecycle) behind Serve's HTTP proxy; N engine replicas (reference_impl/replicas.py) hold the models.
``--ray-address`` joins an existing cluster instead of starting one in this process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import serve

from reference_impl.registry import InstalledVersion, Registry
from reference_impl.runtime import Closable, Loader
from reference_impl.settings import Settings

log = logging.getLogger("llmos.ray")
APP_NAME = "llmos"
SHUTDOWN_STEP_S = 15


def replica_loader(pool: Any) -> Callable[[Registry, Settings], Loader]:
    """The runtime's loader on Ray: a version loads on every replica, and the front keeps its tokenizer."""
    from reference_impl.replicas import RemoteEmbeddingModel, RemoteTextModel

    def make(registry: Registry, settings: Settings) -> Loader:
        def load(version: InstalledVersion) -> Closable:
            package = registry.package_dir(version.digest)
            manifest = version.manifest
            weights = next(f.path for f in manifest.files if f.role == "weights") if manifest.format == "gguf" else ""
            kind = "embedding" if manifest.kind == "embedding" else "text"
            facts = pool.load(version.digest, kind, package, weights)
            front = package / weights if weights else package
            try:
                if kind == "embedding":
                    return RemoteEmbeddingModel(pool, version.digest, front, facts)
                return RemoteTextModel(pool, version.digest, front, facts)
            except Exception:
                pool.unload(version.digest)
                raise

        return load

    return make


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000, graceful_shutdown_timeout_s=5)
@serve.ingress()
class LlmosFront:
    """The HTTP API (the same Starlette app as ``llmos-ref serve``) with engines on replica actors."""

    def __init__(self, settings_json: str, replicas: int) -> None:
        from reference_impl.placement import EngineOptions
        from reference_impl.replicas import PackageSource, ReplicaPool

        self._settings = Settings.model_validate_json(settings_json)
        settings = self._settings
        source = PackageSource(f"http://{settings.host}:{settings.port}", settings.api_keys[0] if settings.api_keys else None)
        options = EngineOptions(settings.device, settings.dtype, settings.quantize)
        self._pool = ReplicaPool(replicas, options, source=source, cache_dir=Path(settings.data_dir) / "replica-cache")

    def __serve_build_asgi_app__(self) -> Any:
        from reference_impl.app import create_app

        app = create_app(self._settings, loader=replica_loader(self._pool))
        app.state.replicas = self._pool
        return app

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()


def serve_on_ray(settings: Settings, *, replicas: int, address: str | None) -> None:
    """Starts (or joins) Ray, runs the application and blocks until SIGINT/SIGTERM."""
    import ray

    ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}})
    serve.start(http_options={"host": settings.host, "port": settings.port})
    app = LlmosFront.bind(settings.model_dump_json(), replicas)  # type: ignore[attr-defined]
    serve.run(app, name=APP_NAME, route_prefix="/")
    print(f"llmos-ref: serving on Ray with {replicas} engine replica(s) at http://{settings.host}:{settings.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    # A terminal's Ctrl-C (or a supervisor's group kill) also reaches Ray's own processes, and a Serve shutdown
    # waiting on a raylet that is already gone never returns: each step gets a bounded time, then we exit.
    for step in (serve.shutdown, ray.shutdown):
        worker = threading.Thread(target=step, daemon=True)
        worker.start()
        worker.join(SHUTDOWN_STEP_S)
        if worker.is_alive():
            log.warning("%s did not finish in %d s; exiting anyway", step.__qualname__, SHUTDOWN_STEP_S)
            os._exit(0)
