"""What a served model can do: its package's capabilities plus what this server's engine adds.

Tool calls, structured outputs and logprobs come from the engine (constrained decoding, the
sampler's own distribution), not from the weights, so every text-generation model served here has
them whatever its manifest says, and a manifest never has to be re-signed to gain them.
"""

from __future__ import annotations

from llmos_std.manifest import PackageManifest
from llmos_std.parameters import Capability

ENGINE_CAPABILITIES: dict[Capability, tuple[Capability, ...]] = {
    "text-generation": ("logprobs", "structured-outputs"),
    "chat": ("tools",),
}
"""A manifest capability -> the capabilities the engine adds to it."""


def served_capabilities(manifest: PackageManifest) -> list[Capability]:
    capabilities: list[Capability] = list(manifest.capabilities)
    for base, added in ENGINE_CAPABILITIES.items():
        if base in manifest.capabilities:
            capabilities += [c for c in added if c not in capabilities]
    return capabilities
