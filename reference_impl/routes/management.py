"""model-management and model-packages: lifecycle actions, blobs, install and delete."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import BinaryIO

from starlette.responses import JSONResponse, Response, StreamingResponse

from llmos_std.errors import LLMOSError
from llmos_std.management import ActivationRecord, DeletedObject, ManagedModel, ManagedModelList
from llmos_std.models import DIGEST_PATTERN
from llmos_std.verification import CHUNK_SIZE

from reference_impl.http import Context, Handler, wire_json

import re

_DIGEST = re.compile(f"^{DIGEST_PATTERN}$")


def _managed(ctx: Context, name: str) -> ManagedModel:
    registry, runtime = ctx.state.registry, ctx.state.runtime
    versions = registry.versions(name)
    if not versions:
        raise LLMOSError("model_not_found", f"model {name!r} is not installed", param="name")
    active = registry.active_version(name)
    history: list[ActivationRecord] = registry.history(name)
    return ManagedModel(
        name=name,
        active_version=active.version if active else None,
        versions=[runtime.resource(v) for v in versions],
        history=history,
    )


async def list_managed_models(ctx: Context) -> Response:
    return wire_json(ManagedModelList(data=[_managed(ctx, name) for name in ctx.state.registry.names()]))


async def get_managed_model(ctx: Context) -> Response:
    return wire_json(_managed(ctx, ctx.path("name")))


async def get_model_version(ctx: Context) -> Response:
    runtime = ctx.state.runtime
    return wire_json(runtime.resource(runtime.find(ctx.path("name"), ctx.path("version"))))


async def load_model_version(ctx: Context) -> Response:
    runtime = ctx.state.runtime
    return wire_json(runtime.load(runtime.find(ctx.path("name"), ctx.path("version"))), status=202)


async def unload_model_version(ctx: Context) -> Response:
    runtime = ctx.state.runtime
    return wire_json(runtime.unload(runtime.find(ctx.path("name"), ctx.path("version"))), status=202)


async def activate_model_version(ctx: Context) -> Response:
    runtime = ctx.state.runtime
    return wire_json(runtime.activate(runtime.find(ctx.path("name"), ctx.path("version"))), status=202)


async def rollback_model(ctx: Context) -> Response:
    return wire_json(ctx.state.runtime.rollback(ctx.path("name")), status=202)


async def delete_model_version(ctx: Context) -> Response:
    runtime = ctx.state.runtime
    version = runtime.find(ctx.path("name"), ctx.path("version"))
    runtime.delete(version)
    return wire_json(DeletedObject(id=f"{version.name}@{version.version}", object="llmos.model_version", deleted=True))


def _digest_param(ctx: Context) -> str:
    digest = ctx.path("digest")
    if not _DIGEST.match(digest):
        raise LLMOSError("digest_invalid", "digests are sha256:<64 lowercase hex>", param="digest")
    return digest


async def head_blob(ctx: Context) -> Response:
    digest = _digest_param(ctx)
    size = ctx.state.registry.blob_size(digest)
    if size is None:
        return Response(status_code=404)
    return Response(status_code=200, headers={"Content-Length": str(size), "Docker-Content-Digest": digest})


async def get_blob(ctx: Context) -> Response:
    digest = _digest_param(ctx)
    blob = ctx.state.registry.open_blob(digest)
    if blob is None:
        raise LLMOSError("blob_unknown", f"no blob with digest {digest} is stored", param="digest")
    size = os.fstat(blob.fileno()).st_size
    # Streamed from the open file: a weights blob may be larger than the server's memory.
    return StreamingResponse(_read(blob), media_type="application/octet-stream", headers={"Content-Length": str(size), "ETag": f'"{digest}"'})


async def _read(blob: BinaryIO) -> AsyncIterator[bytes]:
    """The file ``CHUNK_SIZE`` bytes at a time, each read in a thread; closed however the response ends."""
    try:
        while chunk := await asyncio.to_thread(blob.read, CHUNK_SIZE):
            yield chunk
    finally:
        blob.close()


async def put_blob(ctx: Context) -> Response:
    digest = _digest_param(ctx)
    registry = ctx.state.registry
    info, created = await registry.put_blob_async(digest, ctx.request.stream(), max_bytes=ctx.state.settings.limits.max_blob_bytes)
    return wire_json(info, status=201 if created else 200)


async def install_package(ctx: Context) -> Response:
    if ctx.raw is None:
        raise LLMOSError("invalid_request", "the body must be a manifest")
    version, created = ctx.state.registry.install(ctx.raw, owner=ctx.principal)
    return wire_json(ctx.state.runtime.resource(version), status=201 if created else 200)


async def get_package(ctx: Context) -> Response:
    digest = _digest_param(ctx)
    manifest = ctx.state.registry.manifest(digest)
    if manifest is None:
        raise LLMOSError("package_not_found", f"no installed package has digest {digest}", param="digest")
    # Served exactly as installed: the digest covers the uploaded JSON, so re-serialising through the
    # model (which adds defaulted fields) would hand back a manifest whose digest is not `digest`.
    return JSONResponse(manifest)


HANDLERS: dict[str, Handler] = {
    "list_managed_models": list_managed_models,
    "get_managed_model": get_managed_model,
    "get_model_version": get_model_version,
    "load_model_version": load_model_version,
    "unload_model_version": unload_model_version,
    "activate_model_version": activate_model_version,
    "rollback_model": rollback_model,
    "delete_model_version": delete_model_version,
    "head_blob": head_blob,
    "get_blob": get_blob,
    "put_blob": put_blob,
    "install_package": install_package,
    "get_package": get_package,
}
