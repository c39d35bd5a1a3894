"""core: discovery, health and the OpenAI-compatible model list with LLMOS fields."""

from __future__ import annotations

from starlette.responses import Response

from llmos_std import STANDARD_VERSION
from llmos_std.discovery import DiscoveryDocument, Health, Implementation, Limits
from llmos_std.models import ModelList, ModelObject
from llmos_std.operations import LLMOS_BASE
from llmos_std.profiles import ProfileName, closure

from reference_impl import IMPLEMENTATION_NAME, IMPLEMENTATION_VERSION
from reference_impl.http import Context, Handler, wire_json

SERVED_PROFILES: tuple[ProfileName, ...] = ("core", "inference", "embeddings", "model-management", "model-packages")


async def get_discovery(ctx: Context) -> Response:
    settings = ctx.state.settings
    return wire_json(
        DiscoveryDocument(
            standard_version=STANDARD_VERSION,
            implementation=Implementation(name=IMPLEMENTATION_NAME, version=IMPLEMENTATION_VERSION),
            openai_base="/",
            llmos_base=LLMOS_BASE,
            profiles=list(closure(SERVED_PROFILES)),
            limits=Limits.model_validate(settings.limits.model_dump()),
            auth=["bearer"] if settings.api_keys else ["none"],
            accepted_formats=sorted(settings.accepted_formats),
            architectures=sorted(ctx.state.architectures),
            trust_operations=[],
        )
    )


async def get_health_live(ctx: Context) -> Response:
    return wire_json(Health(status="ok"))


async def get_health_ready(ctx: Context) -> Response:
    if not ctx.state.ready:
        return wire_json(Health(status="unavailable", detail="starting: installing and loading models"), status=503)
    return wire_json(Health(status="ok"))


async def list_models(ctx: Context) -> Response:
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
                capabilities=list(manifest.capabilities), context_length=manifest.context_length.value,
                version=active.version, digest=active.digest, state=runtime.state(active),
                determinism="sequential", max_n=None, dimensions=dimensions,
            )
        )
    return wire_json(ModelList(data=data))


HANDLERS: dict[str, Handler] = {
    "get_discovery": get_discovery,
    "get_health_live": get_health_live,
    "get_health_ready": get_health_ready,
    "list_models": list_models,
}
