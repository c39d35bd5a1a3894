"""``create_app(settings)``: a fresh server each call, routes bound from the operation table."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from llmos_std.errors import LLMOSError
from llmos_std.operations import LLMOS_BASE, OPERATIONS, REQUEST_ID_HEADER

from reference_impl.architectures import TESTED_ARCHITECTURES
from reference_impl.bootstrap import bring_up
from reference_impl.http import EdgeMiddleware, Handler, bind, llmos_error_handler, not_found_handler, unexpected_error_handler
from reference_impl.audit import AuditLog
from reference_impl.keys import KeyStore
from reference_impl.ratelimit import RateLimiter
from reference_impl.registry import InstalledVersion, Registry
from reference_impl.routes import core, data, embeddings, inference, management, responses, security, tasks
from reference_impl.datastore import DataStore
from reference_impl.derive import Operations
from reference_impl.runtime import Closable, Loader, Runtime
from reference_impl.settings import Settings
from reference_impl.trust import TrustStore, configured_signers, local_signing_key

log = logging.getLogger("llmos.app")

HANDLERS: dict[str, Handler] = {
    **core.HANDLERS, **inference.HANDLERS, **embeddings.HANDLERS, **management.HANDLERS, **security.HANDLERS, **tasks.HANDLERS, **data.HANDLERS,
    **responses.HANDLERS,
}


def _runnable_architecture(architecture: str, package_format: str) -> bool:
    from reference_impl import engine  # imported on first install: starting the server needs no torch

    return engine.runnable_architecture(architecture, package_format)


def engine_loader(registry: Registry, settings: Settings) -> Loader:
    """Loads a version's materialised package directory with the engine (the production loader)."""

    def load(version: InstalledVersion) -> Closable:
        from reference_impl import engine

        path = registry.package_dir(version.digest)
        manifest = version.manifest
        options = engine.EngineOptions(device=settings.device, dtype=settings.dtype, quantize=settings.quantize)
        if manifest.kind == "embedding":
            return engine.load_embedding_model(path, options=options)
        if manifest.format == "gguf":
            path = path / next(f.path for f in manifest.files if f.role == "weights")
        return engine.load_text_model(path, max_batch=settings.engine_max_batch, options=options)

    return load


def create_app(settings: Settings, *, loader: Callable[[Registry, Settings], Loader] = engine_loader) -> Starlette:
    """A new application; models are installed and loaded when its lifespan starts."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = KeyStore(key_file(settings), settings.api_keys)
    if keys.empty and not settings.insecure_local:
        raise ValueError("no API key: configure one (api_keys, or `llmos-ref serve`, which creates an admin key on first start), or serve keyless with insecure_local")
    if "*" in settings.cors_origins:
        raise ValueError("cors_origins must name origins: a wildcard would let every web site call the server")
    routes = [
        # A model id may contain "/" (org/name): that one parameter takes Starlette's path converter.
        Route(op.path.replace("{model}", "{model:path}"), bind(op, HANDLERS[op.id]), methods=[op.method])
        for op in OPERATIONS
        if op.id in HANDLERS
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        registry = Registry(Path(settings.data_dir) / "registry", accepted_formats=settings.accepted_formats,
                            trusted=trust.trusted if settings.signatures_required else None, runnable=_runnable_architecture)
        runtime = Runtime(registry, loader(registry, settings), max_load_seconds=settings.limits.max_load_seconds)
        app.state.registry = registry
        app.state.runtime = runtime
        app.state.datastore = DataStore(Path(settings.data_dir) / "datasets.sqlite")
        app.state.operations = Operations()
        try:
            await bring_up(registry, runtime, settings,
                           signing_key=local_signing_key(Path(settings.data_dir)) if settings.signatures_required else None)
            app.state.architectures = set(TESTED_ARCHITECTURES) | {v.manifest.architecture for v in registry.versions()}
            app.state.ready = True
            yield
        finally:
            app.state.ready = False
            runtime.close()
            registry.close()
            app.state.datastore.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={LLMOSError: llmos_error_handler, HTTPException: not_found_handler, Exception: unexpected_error_handler},
    )
    app.state.settings = settings
    app.state.keys = keys
    trust = TrustStore(Path(settings.data_dir) / "trust.json",
                       configured_signers(Path(settings.data_dir), settings.trusted_signer_keys) if settings.signatures_required else [])
    app.state.trust = trust
    app.state.audit = AuditLog(Path(settings.data_dir) / "audit.jsonl")
    app.state.rate_limiter = RateLimiter()
    app.state.ready = False
    app.state.architectures = set(TESTED_ARCHITECTURES)
    if settings.cors_origins:
        # Inside the edge, so the Host allowlist and request ids cover preflights too; listed origins only, never "*".
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=True,
                           allow_methods=["GET", "POST", "PUT", "DELETE", "HEAD"], allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER])
    app.add_middleware(
        EdgeMiddleware,
        allowed_hosts=settings.allowed_hosts,
        max_body_bytes=settings.limits.max_body_bytes,
        blob_paths=(f"{LLMOS_BASE}/blobs/",),
        max_blob_bytes=settings.limits.max_blob_bytes,
        gated_paths=frozenset(op.path for op in OPERATIONS if op.names_serving_model and "{" not in op.path),
        max_concurrent=settings.limits.max_concurrent,
    )
    return app


def key_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "keys.json"
