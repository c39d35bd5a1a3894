"""Package uploads the checks share: a fresh package of the kit's own, manifest edits, refused installs."""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

from conformance.context import Context
from conformance.judging import expect_error
from conformance.lifecycle_driver import discard, listing, package, post_manifest, upload
from conformance.package import Package
from conformance.verdicts import CheckFailed, Skip


def need_packages(ctx: Context) -> None:
    if "model-packages" not in ctx.plan.claimed:
        raise Skip("the target does not claim model-packages")


def fresh_package(ctx: Context, role: str, version: str = "1.0.0", index: int = 1) -> Package:
    """A package under a name of its own, blobs uploaded, not installed; removed at the end of the run."""
    need_packages(ctx)
    name = ctx.name(role)
    ctx.cleanup.append(lambda: discard(ctx, name))
    pkg = package(ctx, name, version, index=index)
    upload(ctx, pkg)
    return pkg


def with_files(manifest: dict[str, Any], change: dict[str, Any], index: int = 0) -> dict[str, Any]:
    files = [dict(f) for f in manifest["files"]]
    files[index] = {**files[index], **change}
    return {**manifest, "files": files}


def weights_index(manifest: dict[str, Any]) -> int:
    return next(i for i, f in enumerate(manifest["files"]) if f["role"] == "weights")


def refused_install(ctx: Context, manifest: dict[str, Any], codes: tuple[str, ...]) -> None:
    """The install is refused with one of ``codes`` and the registry is exactly as it was."""
    before = listing(ctx)
    expect_error(post_manifest(ctx, manifest), codes)
    exchange = ctx.wire.last
    after = listing(ctx)
    if after != before:
        raise CheckFailed("a refused install leaving the registry unchanged", f"{len(before)} models before, {len(after)} after; the listing changed", exchange=exchange)


def pickle_checkpoint() -> bytes:
    """A pickle-based PyTorch checkpoint (a zip holding data.pkl) of an empty state dict: stdlib only."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()
