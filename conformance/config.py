"""One settings model for the kit: fed by a config file (JSON or TOML), ``LLMOS_*`` variables and flags.

Precedence: flags over environment over file over defaults. Secrets are ``SecretStr`` so that no
report form can print them by accident.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from llmos_std.profiles import ProfileName

from conformance.verdicts import ConfigError

ENV_PREFIX = "LLMOS_"
CAPABILITIES = ("text-generation", "chat", "embeddings")


class KitSettings(BaseModel):
    """Everything a run needs; one instance per target."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    """The origin that serves ``/.well-known/llmos``."""
    openai_base_url: str | None = None
    """Where ``/v1/...`` lives, for a server without discovery."""
    api_key: SecretStr | None = None
    admin_key: SecretStr | None = None
    profiles: list[ProfileName] = Field(default_factory=list)
    models: dict[str, str] = Field(default_factory=dict)
    """Capability -> model id overrides."""
    mm_model: str | None = None
    callback_url: str | None = None
    """Where the kit listens for connections the target must never make (server-side fetch canary);
    an http URL on this machine that the target can reach, e.g. http://127.0.0.1:8765."""
    requirements: list[str] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list)
    max_examples: int = Field(default=10, ge=1, le=10_000)
    generation_examples: int = Field(default=4, ge=1, le=1000)
    """Cap on examples for generation-backed properties (each example is one or more generations)."""
    max_tokens: int = Field(default=12, ge=2, le=256)
    """``max_tokens`` of the unconstrained answers properties start from."""
    seed: int = 0
    timeout: float = Field(default=120.0, gt=0)
    """Seconds one request may take (a hang past it is the target's failure)."""
    property_budget_s: float = Field(default=120.0, gt=0)
    """Seconds one property may spend sending examples (half as much again to shrink a failure)."""
    json_report: Path | None = None
    junit: Path | None = None
    html: Path | None = None
    quiet: bool = False

    @field_validator("models")
    @classmethod
    def _known_capabilities(cls, value: dict[str, str]) -> dict[str, str]:
        for cap in value:
            if cap not in CAPABILITIES:
                raise ValueError(f"unknown capability {cap!r} (one of {', '.join(CAPABILITIES)})")
        return value

    @field_validator("base_url", "openai_base_url", "callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/") if value else value

    def secret_values(self) -> tuple[str, ...]:
        return tuple(s.get_secret_value() for s in (self.api_key, self.admin_key) if s is not None)


_LIST_FIELDS = {"profiles", "requirements", "checks"}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in KitSettings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if name in _LIST_FIELDS:
            values[name] = [item for item in raw.replace(",", " ").split() if item]
        elif name == "models":
            values[name] = parse_models(raw.replace(",", " ").split())
        else:
            values[name] = raw
    return values


def parse_models(items: list[str]) -> dict[str, str]:
    models: dict[str, str] = {}
    for item in items:
        cap, sep, model = item.partition("=")
        if not sep or not model:
            raise ConfigError(f"--model takes CAP=ID, not {item!r}")
        models[cap] = model
    return models


def _from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object")
    return {key.replace("-", "_"): value for key, value in data.items()}


def load_settings(flags: Mapping[str, Any], *, config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> KitSettings:
    """Merge the three sources; any problem is a :class:`ConfigError` (exit 2)."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_from_file(config_file))
    merged.update(_from_env(os.environ if environ is None else environ))
    merged.update({key: value for key, value in flags.items() if value not in (None, [], {})})
    try:
        settings = KitSettings.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ConfigError(f"invalid settings: {problems}") from None
    if settings.base_url is None and settings.openai_base_url is None:
        raise ConfigError("give --base-url (the origin serving /.well-known/llmos) or --openai-base-url")
    return settings
