"""Discovery -> what to test: the claimed profiles (with their dependencies) and a model per capability."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmos_std import STANDARD_MAJOR, STANDARD_VERSION
from llmos_std.models import ModelRef, is_model_id
from llmos_std.profiles import PROFILES, ProfileName, closure

from conformance.config import CAPABILITIES, KitSettings
from conformance.verdicts import CheckFailed, ConfigError, KitError
from conformance.wire import Wire


@dataclass
class Plan:
    standard_version: str
    claimed: tuple[ProfileName, ...]
    discovery: dict[str, Any] | None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Capability -> the model object picked from ``/v1/models``."""
    model_list: list[dict[str, Any]] = field(default_factory=list)
    skipped_capabilities: dict[str, str] = field(default_factory=dict)

    @property
    def limits(self) -> dict[str, Any]:
        return dict((self.discovery or {}).get("limits") or {})

    @property
    def implementation(self) -> dict[str, str] | None:
        impl = (self.discovery or {}).get("implementation")
        return {str(k): str(v) for k, v in impl.items()} if isinstance(impl, dict) else None

    def model_ids(self) -> dict[str, str]:
        return {cap: str(obj.get("id")) for cap, obj in self.models.items()}


def _absolute(origin: str, base: str) -> str:
    if base.startswith(("http://", "https://")):
        return base.rstrip("/")
    return origin.rstrip("/") + "/" + base.strip("/") if base.strip("/") else origin.rstrip("/")


def discover(settings: KitSettings) -> tuple[Plan, Wire]:
    """Read discovery (when there is a base URL) and the model list; unreachable -> KitError."""
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    origin = settings.base_url or settings.openai_base_url or ""
    discovery: dict[str, Any] | None = None
    openai_base = settings.openai_base_url or origin
    if settings.base_url is not None:
        probe = Wire(origin, openai_base, api_key=api_key, admin_key=admin_key, timeout=settings.timeout)
        try:
            exchange = probe.request("GET", "/.well-known/llmos", auth=None)
        except CheckFailed as exc:
            raise KitError(f"the base URL {origin} is unreachable: {exc.seen}") from None
        finally:
            probe.close()
        if exchange.status == 200:
            try:
                body = exchange.json()
            except CheckFailed:
                body = None
            discovery = body if isinstance(body, dict) else None
        if discovery is None and not settings.profiles:
            raise ConfigError(f"{origin} serves no discovery document (status {exchange.status}); name the profiles to test with --profile")
    if discovery is not None and settings.openai_base_url is None and isinstance(discovery.get("openai_base"), str):
        openai_base = _absolute(origin, discovery["openai_base"])
    version = str((discovery or {}).get("standard_version", STANDARD_VERSION))
    major = version.split(".")[0]
    if major != str(STANDARD_MAJOR):
        raise ConfigError(f"the target implements LLMOS {version}; this kit tests MAJOR {STANDARD_MAJOR}")
    claimed_raw = (discovery or {}).get("profiles") if discovery is not None else settings.profiles
    claimed_list = [p for p in PROFILES if p in (claimed_raw or [])]
    claimed = closure(claimed_list)
    if settings.profiles and discovery is not None:
        # The user narrows the run; only profiles the target claims are tested.
        wanted = closure(settings.profiles)
        claimed = tuple(p for p in claimed if p in wanted)
    wire = Wire(origin, openai_base, api_key=api_key, admin_key=admin_key, timeout=settings.timeout)
    plan = Plan(version, claimed, discovery)
    try:
        _pick_models(plan, wire, settings)
    except CheckFailed as exc:
        # The model list is judged by its own check; here it only feeds the plan.
        plan.skipped_capabilities = {cap: f"GET /v1/models failed: {exc.seen}" for cap in CAPABILITIES}
    return plan, wire


def _pick_models(plan: Plan, wire: Wire, settings: KitSettings) -> None:
    exchange = wire.request("GET", "/v1/models")
    body = exchange.json() if exchange.status == 200 else {}
    data = body.get("data") if isinstance(body, dict) else None
    models = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)] if isinstance(data, list) else []
    plan.model_list = models
    for cap in CAPABILITIES:
        wanted = settings.models.get(cap)
        if wanted is not None:
            if not is_model_id(wanted):
                raise ConfigError(f"--model {cap}={wanted}: not a model id")
            name = ModelRef.parse(wanted).name
            match = next((m for m in models if m["id"] == name), None)
            if match is None:
                raise ConfigError(f"--model {cap}={wanted}: the target lists no model {name!r}")
            plan.models[cap] = {**match, "id": wanted}
            continue
        candidates = [m for m in models if cap in (m.get("capabilities") or [])]
        ready = [m for m in candidates if m.get("state") == "ready"] or candidates
        if ready:
            plan.models[cap] = ready[0]
        else:
            plan.skipped_capabilities[cap] = f"the target lists no model with the {cap!r} capability"
