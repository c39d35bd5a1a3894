"""Package integrity: the error family of the package tools, streaming hashes, ``validate`` and ``verify``.

Everything streams (1 MiB chunks into one reused buffer), so multi-GB weights cost flat memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from pydantic import ValidationError

from llmos_std.errors import ERROR_CODES
from llmos_std.manifest import PackageManifest, WeightsFormat
from llmos_std.weightfiles import WEIGHT_SUFFIXES, open_nofollow, weights_problem

MANIFEST_NAME = "llmos-package.json"
CHUNK_SIZE = 1 << 20
MAX_MANIFEST_BYTES = 16 << 20

PackageErrorCode = Literal[
    "manifest_invalid",
    "manifest_blob_unknown",
    "path_invalid",
    "digest_invalid",
    "size_invalid",
    "weights_malformed",
    "format_forbidden",
    "architecture_unsupported",
]
if not set(get_args(PackageErrorCode)) <= set(ERROR_CODES):  # pragma: no cover - guards the table
    raise RuntimeError("PackageErrorCode names a code missing from llmos_std.errors")


class PackageError(Exception):
    """A package that cannot be packed, validated or trusted; ``problems`` lists every reason found."""

    def __init__(self, code: PackageErrorCode, problems: list[str]) -> None:
        super().__init__("; ".join(problems) if problems else code)
        self.code: PackageErrorCode = code
        self.problems = list(problems)


@dataclass(frozen=True)
class VerifyProblem:
    code: PackageErrorCode
    path: str
    """The package-relative path of the file at fault."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class VerifyResult:
    manifest: PackageManifest
    digest: str
    """The package identity (sha256 of the canonical manifest without signatures)."""
    problems: tuple[VerifyProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- hashing


def _chunks(stream: BinaryIO) -> Iterator[memoryview]:
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while n := stream.readinto(buffer):  # type: ignore[attr-defined]
        yield view[:n]


def hash_file(path: Path) -> tuple[str, int]:
    """``("sha256:<hex>", size)`` of a file, read in 1 MiB chunks into one reused buffer."""
    digest = hashlib.sha256()
    size = 0
    with open_nofollow(Path(path)) as stream:
        for chunk in _chunks(stream):
            digest.update(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


def copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    """Copy and hash in one pass, so the digest describes exactly the bytes written."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open_nofollow(src) as source, open(dst, "xb") as target:
        for chunk in _chunks(source):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


# ---------------------------------------------------------------- validate


def _problem_code(loc: tuple[int | str, ...]) -> PackageErrorCode:
    if len(loc) == 3 and loc[0] == "files" and loc[2] == "path":
        return "path_invalid"
    if loc and loc[-1] == "digest":
        return "digest_invalid"
    return "manifest_invalid"


def validation_error(exc: ValidationError) -> PackageError:
    codes: set[PackageErrorCode] = set()
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{'.'.join(str(part) for part in loc)}: {message}" if loc else message)
        codes.add(_problem_code(loc))
    return PackageError(codes.pop() if len(codes) == 1 else "manifest_invalid", problems)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys {duplicates}")
    return dict(pairs)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def validate(path: Path) -> PackageManifest:
    """Read and validate a manifest file (or a package directory's ``llmos-package.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    label = path.name
    if not path.is_file():
        raise PackageError("manifest_invalid", [f"{label}: no such file"])
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise PackageError("manifest_invalid", [f"{label}: larger than {MAX_MANIFEST_BYTES} bytes"])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PackageError("manifest_invalid", [f"{label}: not valid JSON: {exc}"]) from None
    try:
        manifest = PackageManifest.model_validate_json(text)
    except ValidationError as exc:
        raise validation_error(exc) from None
    listed = [i for i, entry in enumerate(manifest.files) if entry.path.casefold() == MANIFEST_NAME]
    if listed:
        raise PackageError("path_invalid", [f"files.{i}.path: the manifest cannot list itself" for i in listed])
    return manifest


# ---------------------------------------------------------------- verify


def _scan(package_dir: Path) -> tuple[set[str], list[VerifyProblem]]:
    """The package's regular files (relative POSIX paths) and a problem for each link or special file."""
    regular: set[str] = set()
    problems: list[VerifyProblem] = []
    for root, dirs, files in os.walk(package_dir, followlinks=False):
        base = Path(root)
        for name in sorted(dirs + files):
            path = base / name
            rel = path.relative_to(package_dir).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                problems.append(VerifyProblem("path_invalid", rel, "symbolic link; packages hold regular files only"))
            elif stat.S_ISREG(mode):
                regular.add(rel)
            elif not stat.S_ISDIR(mode):
                problems.append(VerifyProblem("path_invalid", rel, "not a regular file"))
    return regular, problems


def _check_weights(path: Path, rel: str, declared: WeightsFormat | None) -> VerifyProblem | None:
    fmt = declared or WEIGHT_SUFFIXES.get(path.suffix.lower())
    problem = weights_problem(path, fmt)
    return None if problem is None else VerifyProblem("weights_malformed", rel, f"does not parse as {fmt}: {problem}")


def verify(package_dir: Path) -> VerifyResult:
    """Validate the manifest, then re-hash every file; the result lists every problem found.

    Raises :class:`PackageError` only when the manifest itself is invalid.
    """
    package_dir = Path(package_dir)
    if (package_dir / MANIFEST_NAME).is_symlink():
        raise PackageError("path_invalid", [f"{MANIFEST_NAME}: symbolic link; packages hold regular files only"])
    manifest = validate(package_dir)
    regular, problems = _scan(package_dir)
    linked = {p.path for p in problems}
    listed = {entry.path for entry in manifest.files}
    for entry in manifest.files:
        path = package_dir / entry.path
        if entry.path not in regular:
            if not any(entry.path == link or entry.path.startswith(link + "/") for link in linked):
                problems.append(VerifyProblem("manifest_blob_unknown", entry.path, "listed but missing"))
            continue
        size = path.stat().st_size
        if size != entry.size:
            problems.append(VerifyProblem("size_invalid", entry.path, f"size {size} bytes, manifest says {entry.size}"))
            continue
        digest, _ = hash_file(path)
        if digest != entry.digest:
            message = f"digest {digest}, manifest says {entry.digest}"
            problems.append(VerifyProblem("digest_invalid", entry.path, message))
            continue
        if entry.role in ("weights", "adapter"):
            problem = _check_weights(path, entry.path, manifest.format if entry.role == "weights" else None)
            if problem is not None:
                problems.append(problem)
    for rel in sorted(regular - listed - {MANIFEST_NAME}):
        problems.append(VerifyProblem("path_invalid", rel, "not listed in the manifest"))
    return VerifyResult(manifest=manifest, digest=manifest.digest(), problems=tuple(problems))
