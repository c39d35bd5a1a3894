"""core: discovery, health and the OpenAI-compatible model list with LLMOS fields."""

from __future__ import annotations

import json

from starlette.responses import Response

from llmos_std import STANDARD_VERSION
from llmos_std.discovery import DiscoveryDocument, Health, Implementation, Limits
from llmos_std.errors import LLMOSError
from llmos_std.export import effective_openapi
from llmos_std.models import ModelList, ModelObject
from llmos_std.operations import LLMOS_BASE
from llmos_std.profiles import ProfileName, closure
from llmos_std.security import Principal

from reference_impl.capabilities import served_capabilities
from reference_impl import IMPLEMENTATION_NAME, IMPLEMENTATION_VERSION
from reference_impl.http import Context, Handler, wire_json
from reference_impl.settings import Settings
from reference_impl.tasks import offered_tasks

SERVED_PROFILES: tuple[ProfileName, ...] = ("core", "inference", "embeddings", "responses", "tasks", "model-management", "model-packages", "data-management")
KEYED_PROFILES: tuple[ProfileName, ...] = ("security-baseline", "security-standard")
TRUST_OPERATIONS = ("list_trusted_signers", "add_trusted_signer", "remove_trusted_signer")
"""Claimed only when the server needs keys: a keyless local server claims no security profile."""


def served_profiles(settings: Settings) -> list[ProfileName]:
    keyed = () if settings.insecure_local else KEYED_PROFILES + (("security-strict",) if settings.signatures_required else ())
    return list(closure(SERVED_PROFILES + keyed))


async def get_discovery(ctx: Context) -> Response:
    settings = ctx.state.settings
    return wire_json(
        DiscoveryDocument(
            standard_version=STANDARD_VERSION,
            implementation=Implementation(name=IMPLEMENTATION_NAME, version=IMPLEMENTATION_VERSION),
            openai_base="/",
            llmos_base=LLMOS_BASE,
            profiles=served_profiles(settings),
            limits=Limits.model_validate(settings.limits.model_dump()),
            auth=["none"] if settings.insecure_local else ["bearer"],
            accepted_formats=sorted(settings.accepted_formats),
            architectures=sorted(ctx.state.architectures),
            trust_operations=list(TRUST_OPERATIONS) if settings.signatures_required else [],
        )
    )


async def get_health_live(ctx: Context) -> Response:
    return wire_json(Health(status="ok"))


async def get_health_ready(ctx: Context) -> Response:
    pool = getattr(ctx.state, "replicas", None)  # reference_impl.replicas.ReplicaPool when served on Ray
    replicas = pool.health() if pool is not None else None
    if not ctx.state.ready:
        return wire_json(Health(status="unavailable", detail="starting: installing and loading models", replicas=replicas), status=503)
    if pool is not None and not pool.ready:
        return wire_json(Health(status="unavailable", detail="no engine replica is ready", replicas=replicas), status=503)
    return wire_json(Health(status="ok", replicas=replicas))


async def list_models(ctx: Context) -> Response:
    return wire_json(ModelList(data=_model_objects(ctx)))


async def retrieve_model(ctx: Context) -> Response:
    wanted = ctx.path("model")
    found = next((m for m in _model_objects(ctx) if m.id == wanted), None)
    if found is None:
        raise LLMOSError("model_not_found", f"no model {wanted!r} is served here", param="model")
    return wire_json(found)


def _model_objects(ctx: Context) -> list[ModelObject]:
    registry, runtime = ctx.state.registry, ctx.state.runtime
    data: list[ModelObject] = []
    for name in registry.names():
        active = registry.active_version(name)
        if active is None:
            continue
        manifest = active.manifest
        loaded = runtime.loaded(active)
        dimensions = getattr(loaded, "dimensions", None) if manifest.kind == "embedding" else None
        data.append(
            ModelObject(
                id=name, created=active.installed_at, owned_by=active.owner,
                capabilities=served_capabilities(manifest), context_length=manifest.context_length.value,
                version=active.version, digest=active.digest, state=runtime.state(active),
                determinism="sequential", max_n=None, dimensions=dimensions, tasks=offered_tasks(manifest),
            )
        )
    return data


async def get_openapi(ctx: Context) -> Response:
    """The standard's document as this server is configured: bearer security only where keys are needed."""
    document = effective_openapi(keys_required=not ctx.state.settings.insecure_local, server_url=str(ctx.request.base_url).rstrip("/"))
    return Response(json.dumps(document), media_type="application/json")


async def get_principal(ctx: Context) -> Response:
    return wire_json(Principal(id=ctx.principal, scopes=list(ctx.scopes)))


HANDLERS: dict[str, Handler] = {
    "get_principal": get_principal,
    "get_openapi": get_openapi,
    "get_discovery": get_discovery,
    "get_health_live": get_health_live,
    "get_health_ready": get_health_ready,
    "list_models": list_models,
    "retrieve_model": retrieve_model,
}
