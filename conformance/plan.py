"""Discovery -> what to test: the claimed profiles (with their dependencies) and a model per capability.

Model ids are used exactly as the target lists them (``org/name``, ``name:tag``, paths). Where the
target does not declare a model's capabilities (a plain OpenAI-compatible server), each claimed
operation is probed once on each listed model, so the kit never fails a target for a capability
it had no way to declare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llmos_std import STANDARD_MAJOR, STANDARD_VERSION
from llmos_std.profiles import PROFILES, ProfileName, closure

from conformance.bodies import CAPABILITY_OF, PATH_OF, PROFILE_OF, minimal_body
from conformance.config import CAPABILITIES, KitSettings
from conformance.verdicts import CheckFailed, ConfigError, KitError
from conformance.wire import Wire

MAX_PROBED_MODELS = 8
"""Models whose capabilities the kit finds out by probing, at most (one request per operation each)."""

Source = Literal["declared", "probed", "configured"]


@dataclass
class Plan:
    standard_version: str
    claimed: tuple[ProfileName, ...]
    discovery: dict[str, Any] | None
    openai_base: str = ""
    """Where ``/v1/...`` is sent, as resolved (an SDK-style ``.../v1`` is taken back to its base)."""
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Capability -> the model object picked from ``/v1/models``."""
    model_sources: dict[str, Source] = field(default_factory=dict)
    model_list: list[dict[str, Any]] = field(default_factory=list)
    skipped_capabilities: dict[str, str] = field(default_factory=dict)
    probed: dict[str, set[str]] = field(default_factory=dict)
    """Model id -> the capabilities a probe found, for models that declare none."""

    @property
    def limits(self) -> dict[str, Any]:
        return dict((self.discovery or {}).get("limits") or {})

    @property
    def implementation(self) -> dict[str, str] | None:
        impl = (self.discovery or {}).get("implementation")
        return {str(k): str(v) for k, v in impl.items()} if isinstance(impl, dict) else None

    def model_ids(self) -> dict[str, str]:
        return {cap: str(obj.get("id")) for cap, obj in self.models.items()}

    def declared_capabilities(self, model: dict[str, Any]) -> set[str] | None:
        """The capabilities the target itself states for ``model``; None when it states none."""
        caps = model.get("capabilities")
        return {str(c) for c in caps} if isinstance(caps, list) else None


def resolve_openai_base(url: str) -> str:
    """``http://h:p`` and the OpenAI-SDK form ``http://h:p/v1`` both name the base that ``/v1/...`` goes under."""
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _absolute(origin: str, base: str) -> str:
    if base.startswith(("http://", "https://")):
        return base.rstrip("/")
    return origin.rstrip("/") + "/" + base.strip("/") if base.strip("/") else origin.rstrip("/")


def discover(settings: KitSettings) -> tuple[Plan, Wire]:
    """Read discovery (when there is a base URL) and the model list; unreachable -> KitError."""
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    given_openai = resolve_openai_base(settings.openai_base_url) if settings.openai_base_url else None
    origin = settings.base_url or given_openai or ""
    discovery: dict[str, Any] | None = None
    openai_base = given_openai or origin
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
    if discovery is not None and given_openai is None and isinstance(discovery.get("openai_base"), str):
        openai_base = resolve_openai_base(_absolute(origin, discovery["openai_base"]))
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
    plan = Plan(version, claimed, discovery, openai_base=openai_base)
    try:
        _pick_models(plan, wire, settings)
    except CheckFailed as exc:
        # The model list is judged by its own check; here it only feeds the plan.
        plan.skipped_capabilities = {cap: f"GET /v1/models failed: {exc.seen}" for cap in CAPABILITIES}
    return plan, wire


def _listed(models: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    """The listed model ``wanted`` names: its exact id, or a listed id pinned with ``@version``/``@sha256:``."""
    exact = next((m for m in models if m["id"] == wanted), None)
    if exact is not None or "@" not in wanted:
        return exact
    return next((m for m in models if m["id"] == wanted.rpartition("@")[0]), None)


def _pick_models(plan: Plan, wire: Wire, settings: KitSettings) -> None:
    exchange = wire.request("GET", "/v1/models")
    body = exchange.json() if exchange.status == 200 else {}
    data = body.get("data") if isinstance(body, dict) else None
    models = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)] if isinstance(data, list) else []
    plan.model_list = models
    for cap, wanted in settings.models.items():
        match = _listed(models, wanted)
        if match is None:
            listed = ", ".join(repr(m["id"]) for m in models[:5]) or "none"
            raise ConfigError(f"--model {cap}={wanted}: the target lists no such model (it lists {listed})")
        plan.models[cap] = {**match, "id": wanted}
        plan.model_sources[cap] = "configured"
    undeclared = [m for m in models if plan.declared_capabilities(m) is None][:MAX_PROBED_MODELS]
    for model in undeclared:
        plan.probed[model["id"]] = _probe(plan, wire, model["id"])
    for cap in CAPABILITIES:
        if cap in plan.models:
            continue
        declared = [m for m in models if cap in (plan.declared_capabilities(m) or ())]
        ready = [m for m in declared if m.get("state") == "ready"] or declared
        if ready:
            plan.models[cap], plan.model_sources[cap] = ready[0], "declared"
            continue
        probed = [m for m in undeclared if cap in plan.probed.get(m["id"], set())]
        if probed:
            plan.models[cap], plan.model_sources[cap] = probed[0], "probed"
        elif undeclared:
            plan.skipped_capabilities[cap] = f"no listed model answered a {cap!r} request with 200 when probed"
        else:
            plan.skipped_capabilities[cap] = f"the target lists no model with the {cap!r} capability"


def _probe(plan: Plan, wire: Wire, model_id: str) -> set[str]:
    """One request per claimed operation: the capabilities the model serves with a 200."""
    found: set[str] = set()
    for op, cap in CAPABILITY_OF.items():
        if PROFILE_OF[op] not in plan.claimed:
            continue
        try:
            answer = wire.request("POST", PATH_OF[op], json_body=minimal_body(op, model_id, max_tokens=1))
        except CheckFailed:
            continue  # a broken answer is judged by the checks that use the operation, not here
        if answer.status == 200:
            found.add(cap)
    return found
