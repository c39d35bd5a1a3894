"""What a check gets: the wire, the plan, the settings, and a place to remember what it created."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.config import KitSettings
from conformance.plan import Plan
from conformance.verdicts import Skip
from conformance.wire import Wire


@dataclass
class Context:
    wire: Wire
    plan: Plan
    settings: KitSettings
    run_id: str
    cache: dict[Any, Any] = field(default_factory=dict)
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def model(self, capability: str) -> dict[str, Any]:
        picked = self.plan.models.get(capability)
        if picked is None:
            raise Skip(self.plan.skipped_capabilities.get(capability, f"no model with the {capability!r} capability"))
        return picked

    def limit(self, name: str) -> int | None:
        value = self.plan.limits.get(name)
        return value if isinstance(value, int) else None

    def name(self, suffix: str) -> str:
        return f"llmos-conformance-{self.run_id}-{suffix}"
