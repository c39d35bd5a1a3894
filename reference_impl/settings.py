"""Server settings: one model feeds CLI flags and ``LLMOS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmos_std.discovery import Limits
from llmos_std.manifest import WeightsFormat


class ServerLimits(Limits):
    """The discovery document's limits, with the reference server's defaults: one definition of each."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    max_blob_bytes: int = Field(default=8 * 1024 * 1024 * 1024, ge=1)
    max_tokens: int = Field(default=2048, ge=1)
    max_n: int = Field(default=8, ge=1)
    max_stop: int = Field(default=4, ge=0)
    max_batch: int = Field(default=32, ge=1)
    max_prompt_tokens: int = Field(default=8192, ge=1)
    max_concurrent: int = Field(default=64, ge=1)
    max_load_seconds: int = Field(default=300, ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @property
    def signatures_required(self) -> bool:
        return self.require_signatures and not self.insecure_local

    host: str = "127.0.0.1"
    port: int = 8400
    data_dir: Path = Path("data")
    models: list[Path] = Field(default_factory=list)
    """Model directories, GGUF files or package dirs to install on start; empty means the bundled defaults."""
    bundled_defaults: bool = True
    """Install the bundled SmolLM2 chat model and MiniLM embedder when ``models`` is empty."""
    api_keys: list[str] = Field(default_factory=list)
    """Admin bearer keys from the operator's configuration, besides those in ``<data_dir>/keys.json``."""
    insecure_local: bool = False
    """Serve without keys (loopback only): discovery then claims no security profile. The only way to run keyless."""
    require_signatures: bool = True
    """With keys on: install only packages signed by a trusted signer (security-strict). Ignored by insecure_local."""
    trusted_signer_keys: list[Path] = Field(default_factory=list)
    """PEM public keys of package signers to trust, besides the server's own local signing key."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the server (exact ``scheme://host[:port]``); none by default."""
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"])
    limits: ServerLimits = Field(default_factory=ServerLimits)
    accepted_formats: frozenset[WeightsFormat] = frozenset({"safetensors", "gguf"})
    """Weights formats the registry installs and discovery declares (pickle never by default)."""
    engine_max_batch: int = 16
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """Where models run: auto picks CUDA, then MPS, then the CPU."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """auto: float32 on CPU (the exact reference path), bfloat16 on CUDA, float16 on MPS, bfloat16 for int weights."""
    quantize: Literal["auto", "none", "int8", "int4"] = "auto"
    """Weight-only int8/int4 on CPU; auto keeps a GGUF file's own precision (a Q4 file is served from int4)."""
    default_max_tokens: int = 256
    """Completion budget when a request sets none (capped by the context left)."""
