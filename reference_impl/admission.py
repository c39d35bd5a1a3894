"""Admission: what a package must satisfy before the registry installs it, each refusal with its code.

Everything here is decided from the manifest and the stored blobs alone, before anything is staged,
so a refused install leaves the registry exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import JsonValue, ValidationError

from llmos_std.errors import LLMOSError
from llmos_std.manifest import PackageManifest, manifest_digest
from llmos_std.validation import validate_json_body
from llmos_std.verification import MANIFEST_NAME
from llmos_std.weightfiles import WEIGHT_SUFFIXES, weights_problem

from reference_impl.architectures import ArchitectureCheck

MAX_CONFIG_BYTES = 16 << 20
_CODE_SUFFIXES = (".py", ".pyc")


def _has_auto_map(path: Path) -> bool | None:
    """Whether a JSON config names remote code; None when it is too large to check."""
    if path.stat().st_size > MAX_CONFIG_BYTES:
        return None
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False  # what does not parse cannot be loaded, so it cannot load code either
    return isinstance(value, dict) and "auto_map" in value


def _validation_error(exc: ValidationError) -> LLMOSError:
    errors = exc.errors(include_url=False)
    for error in errors:
        loc = tuple(error["loc"])
        if len(loc) == 3 and loc[0] == "files" and loc[2] == "path":
            field = ".".join(str(part) for part in loc)
            return LLMOSError("path_invalid", f"{field}: {error['msg'].removeprefix('Value error, ')}", param=field)
    problems = []
    for error in errors:
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}" if field else message)
    first = errors[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    if param is None and problems[0].startswith("files:"):
        param = "files"  # the model-level checks (duplicate paths, no weights) are about files
    return LLMOSError("manifest_invalid", "; ".join(problems[:5]), param=param)


def _check_layout(manifest: PackageManifest) -> None:
    """Paths the package directory cannot hold: the manifest itself, or a file where a folder must be."""
    folded = {entry.path.casefold() for entry in manifest.files}
    for i, entry in enumerate(manifest.files):
        if entry.path.casefold() == MANIFEST_NAME:
            raise LLMOSError("path_invalid", f"files.{i}.path: the manifest cannot list itself", param=f"files.{i}.path")
        parts = entry.path.casefold().split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in folded:
                raise LLMOSError(
                    "path_invalid", f"files.{i}.path: {entry.path!r} lies under another listed file", param=f"files.{i}.path"
                )


def admit_manifest(manifest_json: Mapping[str, JsonValue], accepted_formats: frozenset[str],
                   runnable: ArchitectureCheck | None = None) -> tuple[PackageManifest, str]:
    """The validated manifest and its package digest, or the refusal code DESIGN section 7 names."""
    try:
        manifest: PackageManifest = validate_json_body(PackageManifest, dict(manifest_json))
    except ValidationError as exc:
        raise _validation_error(exc) from None
    try:
        digest = manifest_digest(manifest_json)
    except (ValueError, TypeError) as exc:
        raise LLMOSError("manifest_invalid", f"the manifest is not I-JSON: {exc}") from None
    _check_layout(manifest)
    if runnable is not None and not runnable(manifest.architecture, manifest.format):
        raise LLMOSError("architecture_unsupported", f"this server cannot run architecture {manifest.architecture!r}", param="architecture")
    if manifest.format not in accepted_formats:
        accepted = ", ".join(sorted(accepted_formats))
        raise LLMOSError("format_forbidden", f"format {manifest.format!r} is not accepted ({accepted})", param="format")
    for i, entry in enumerate(manifest.files):
        suffix = "." + entry.path.rsplit(".", 1)[-1].casefold() if "." in entry.path else ""
        if suffix in _CODE_SUFFIXES:
            raise LLMOSError("format_forbidden", f"{entry.path}: packages may not contain code", param=f"files.{i}.path")
        if WEIGHT_SUFFIXES.get(suffix) == "pytorch-pickle" and "pytorch-pickle" not in accepted_formats:
            raise LLMOSError("format_forbidden", f"{entry.path}: pickle files run code when loaded", param=f"files.{i}.path")
    return manifest, digest


def admit_blobs(manifest: PackageManifest, blob_path: Callable[[str], Path]) -> None:
    """Every listed blob is stored with the declared size, configs load no code, weights parse."""
    missing = [(i, e) for i, e in enumerate(manifest.files) if not blob_path(e.digest).is_file()]
    if missing:
        i, entry = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise LLMOSError(
            "manifest_blob_unknown", f"{entry.path}: blob {entry.digest} is not uploaded{more}", param=f"files.{i}.digest"
        )
    for i, entry in enumerate(manifest.files):
        size = blob_path(entry.digest).stat().st_size
        if size != entry.size:
            raise LLMOSError(
                "size_invalid", f"{entry.path}: blob {entry.digest} has {size} bytes, the manifest says {entry.size}",
                param=f"files.{i}.size",
            )
    for i, entry in enumerate(manifest.files):
        blob = blob_path(entry.digest)
        name = entry.path.rsplit("/", 1)[-1].casefold()
        if name.endswith("config.json") and _has_auto_map(blob) is not False:
            raise LLMOSError(
                "format_forbidden", f"{entry.path}: auto_map loads code from the package (or the file is too large to check)",
                param=f"files.{i}.path",
            )
        # Weights parse as the declared format; adapter weights as their suffix says.
        kind = {"weights": manifest.format, "adapter": WEIGHT_SUFFIXES.get(Path(name).suffix)}.get(entry.role)
        problem = weights_problem(blob, kind)
        if problem is not None:
            raise LLMOSError("weights_malformed", f"{entry.path}: not {kind}: {problem}", param=f"files.{i}.path")
