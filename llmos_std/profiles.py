"""The profiles an implementation can claim; the suite tests exactly what is claimed."""

from __future__ import annotations

from typing import Literal, get_args

ProfileName = Literal[
    "core",
    "inference",
    "embeddings",
    "responses",
    "tasks",
    "model-management",
    "model-packages",
    "data-management",
    "security-baseline",
    "security-standard",
    "security-strict",
]

PROFILES: tuple[ProfileName, ...] = get_args(ProfileName)

PROFILE_DEPENDS: dict[ProfileName, tuple[ProfileName, ...]] = {
    "core": (),
    "inference": ("core",),
    "embeddings": ("core",),
    "responses": ("inference",),
    "tasks": ("core",),
    "model-management": ("core",),
    "model-packages": ("core", "model-management"),
    "data-management": ("core",),
    "security-baseline": ("core",),
    "security-standard": ("security-baseline",),
    "security-strict": ("security-standard",),
}
"""A claim of a profile implies the claims it depends on."""

PROFILE_SUMMARY: dict[ProfileName, str] = {
    "core": "Discovery, health, the model list with LLMOS fields, the error envelope and input validation.",
    "inference": "OpenAI-compatible text and chat completions with streaming, sampling, stop, seed and usage.",
    "embeddings": "OpenAI-compatible embeddings in float and base64.",
    "responses": "The Responses API after Open Responses 2026-04-24, stateless: items, function calls, text formats, typed event streams.",
    "tasks": "Translate, summarize and answer with standard pre- and post-processing.",
    "model-management": "Lifecycle of installed model versions: load, unload, activate, rollback.",
    "model-packages": "Content-addressed upload of model packages: blobs, manifest, install, delete.",
    "data-management": "Datasets: create, append, preprocessing pipelines, cursor queries, export, delete.",
    "security-baseline": "Bearer keys, RFC 6750 challenges, limits, no leaks, DNS-rebinding and CORS safety.",
    "security-standard": "Scopes, key lifecycle, rate limits, audit events and request ids.",
    "security-strict": "Signed packages only, no code in packages, owner isolation, verifiable audit chain.",
}


def closure(claimed: list[ProfileName] | tuple[ProfileName, ...]) -> tuple[ProfileName, ...]:
    """The claimed profiles plus everything they depend on, in table order."""
    wanted: set[ProfileName] = set()
    stack = list(claimed)
    while stack:
        profile = stack.pop()
        if profile not in wanted:
            wanted.add(profile)
            stack.extend(PROFILE_DEPENDS[profile])
    return tuple(p for p in PROFILES if p in wanted)
