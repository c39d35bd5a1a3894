"""model-packages with the kit's own package: install, refusals that change nothing, blob verification,
forbidden formats, idempotence, interrupted uploads, deletion and blob download.
"""

from __future__ import annotations

import json
import random
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from llmos_std.canonical import sha256_digest
from llmos_std.manifest import manifest_digest
from llmos_std.operations import LLMOS_BASE

from conformance.context import Context
from conformance.judging import expect_error, expect_status, ok_json
from conformance.registry import check
from conformance.lifecycle_driver import (
    Subject,
    discard,
    get_model,
    install,
    listing,
    perform,
    post_manifest,
    subject,
    version_path,
)
from conformance.package import Package
from conformance.uploads import fresh_package, need_packages, pickle_checkpoint, refused_install, weights_index, with_files
from conformance.verdicts import CheckFailed, CheckOutcome, Skip

INTERRUPT_SETTLE_S = 0.3
"""How long the kit lets the server notice a dropped connection before it looks for leftovers."""
NOISE_BYTES = 64 * 1024 + 3
"""The extra file the download check adds to its package: random, so no other package shares it, and
not a multiple of any buffer size, so a server that drops or pads the last read is caught."""


def _absent_blob(ctx: Context, seed: str) -> tuple[bytes, str]:
    data = f"{ctx.name(seed)} never uploaded\n".encode()
    digest = sha256_digest(data)
    expect_status(ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{digest}", auth="admin"), 404)
    return data, digest


@check("install_package")
def install_package(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "install")
    try:
        created = install(ctx, pkg)
        exchange = ctx.wire.last
        if (created["name"], created["version"], created["state"]) != (pkg.name, pkg.version, "installed"):
            raise CheckFailed(f"{pkg.name}@{pkg.version} in state 'installed'", f"{created['name']}@{created['version']} in {created['state']!r}", exchange=exchange)
        if created["digest"] != manifest_digest(pkg.manifest):
            raise CheckFailed(f"digest {manifest_digest(pkg.manifest)} (the manifest's package digest)", created["digest"], exchange=exchange)
        listed = get_model(ctx, pkg.name)
        if [(v["version"], v["digest"]) for v in listed["versions"]] != [(pkg.version, created["digest"])]:
            raise CheckFailed(f"{pkg.name} listing exactly the installed version", repr(listed["versions"]), exchange=ctx.wire.last)
    finally:
        discard(ctx, pkg.name)
    return CheckOutcome(examples=1, triggered=1)


@check("install_refusals")
def install_refusals(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "refused")
    manifest = pkg.manifest
    _data, absent = _absent_blob(ctx, "refused-blob")
    invalid = {k: v for k, v in manifest.items() if k != "version"}
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        (invalid, ("manifest_invalid",)),  # a required member missing
        ({**manifest, "version": "one"}, ("manifest_invalid",)),  # not SemVer
        (with_files(manifest, {"digest": absent}), ("manifest_blob_unknown",)),
        (with_files(manifest, {"path": "../config.json"}), ("path_invalid",)),
        (with_files(manifest, {"path": "/etc/config.json"}), ("path_invalid",)),
        (with_files(manifest, {"path": "sub/../config.json"}), ("path_invalid",)),
        ({**manifest, "architecture": "LlmosNoSuchArchitectureForCausalLM"}, ("architecture_unsupported",)),
    ]
    for body, codes in cases:
        refused_install(ctx, body, codes)
    expect_error(ctx.wire.request("GET", f"{LLMOS_BASE}/models/{pkg.name}", auth="admin"), ("model_not_found",))
    return CheckOutcome(examples=len(cases), triggered=len(cases))


@check("install_verifies_blobs")
def install_verifies_blobs(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "verify")
    manifest = pkg.manifest
    weights = weights_index(manifest)
    # Sizes that do not match the stored blob, one smaller and one larger.
    for index, delta in ((0, 1), (weights, -1)):
        size = manifest["files"][index]["size"] + delta
        refused_install(ctx, with_files(manifest, {"size": size}, index), ("size_invalid",))
    # Weights that do not parse as safetensors: a header length far beyond the file.
    junk = b"\xff" * 8 + b"{}"
    digest = sha256_digest(junk)
    put = ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{digest}", content=junk, content_type="application/octet-stream", auth="admin")
    ok_json(put, "BlobInfo", status=put.status if put.status in (200, 201) else 201)
    refused_install(ctx, with_files(manifest, {"digest": digest, "size": len(junk)}, weights), ("weights_malformed",))
    return CheckOutcome(examples=3, triggered=3)


@check("format_forbidden")
def format_forbidden(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "pickle")
    accepted = (ctx.plan.discovery or {}).get("accepted_formats") or []
    if "pytorch-pickle" in accepted:
        raise Skip("the target declares pytorch-pickle in accepted_formats, so pickle weights may be installed")
    data = pickle_checkpoint()
    digest = sha256_digest(data)
    put = ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{digest}", content=data, content_type="application/octet-stream", auth="admin")
    ok_json(put, "BlobInfo", status=put.status if put.status in (200, 201) else 201)
    manifest = with_files(pkg.manifest, {"path": "pytorch_model.bin", "digest": digest, "size": len(data)}, weights_index(pkg.manifest))
    manifest = {**manifest, "format": "pytorch-pickle"}
    refused_install(ctx, manifest, ("format_forbidden",))
    # The same pickle file declared as safetensors weights is pickle-based weights all the same.
    refused_install(ctx, {**manifest, "format": "safetensors"}, ("format_forbidden", "weights_malformed"))
    return CheckOutcome(examples=2, triggered=2)


@check("install_idempotent")
def install_idempotent(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "idempotent")
    try:
        first = install(ctx, pkg)
        again = post_manifest(ctx, pkg.manifest)
        second = ok_json(again, "ModelVersion", status=200)
        same = ("digest", "installed_at", "version", "name")
        if any(first[k] != second[k] for k in same):
            raise CheckFailed("the repeated install answering with the installed version unchanged", f"{ {k: second[k] for k in same} } after { {k: first[k] for k in same} }", exchange=again)
        other = {**pkg.manifest, "description": "another package under the same name and version"}
        refused_install(ctx, other, ("already_exists",))
        model = get_model(ctx, pkg.name)
        if [(v["version"], v["digest"]) for v in model["versions"]] != [(pkg.version, first["digest"])]:
            raise CheckFailed(f"{pkg.name}@{pkg.version} installed once, as the first manifest", repr(model["versions"]), exchange=ctx.wire.last)
    finally:
        discard(ctx, pkg.name)
    return CheckOutcome(examples=2, triggered=2)


def _interrupted(ctx: Context, method: str, path: str, content_type: str, body: bytes) -> None:
    """Send a request that declares ``len(body)`` bytes, send half of them, and close the connection."""
    origin = urlsplit(ctx.wire.origin)
    host, port = origin.hostname or "127.0.0.1", origin.port or (443 if origin.scheme == "https" else 80)
    if origin.scheme != "http":
        raise Skip("interrupted uploads are sent over a raw socket, which the kit does only for http:// targets")
    headers = {"Host": origin.netloc, **ctx.wire.headers_for("admin", content_type), "Content-Length": str(len(body)), "Connection": "close"}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    try:
        with socket.create_connection((host, port), timeout=ctx.settings.timeout) as sock:
            sock.sendall(head.encode("latin-1") + body[: len(body) // 2])
            time.sleep(0.05)
    except OSError as exc:
        raise CheckFailed("a server that accepts the connection", f"{type(exc).__name__}: {exc}") from None
    time.sleep(INTERRUPT_SETTLE_S)


@check("install_atomic")
def install_atomic(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "atomic")
    before = listing(ctx)
    data = b"llmos-conformance interrupted blob " + ctx.name("atomic").encode() + b"\n" * 4096
    digest = sha256_digest(data)
    expect_status(ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{digest}", auth="admin"), 404)
    _interrupted(ctx, "PUT", f"{LLMOS_BASE}/blobs/{digest}", "application/octet-stream", data)
    head = ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{digest}", auth="admin")
    if head.status != 404:
        raise CheckFailed("HEAD 404 for a blob whose upload was interrupted", f"HEAD {head.status}", exchange=head)
    complete = ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{digest}", content=data, content_type="application/octet-stream", auth="admin")
    ok_json(complete, "BlobInfo", status=201)  # 200 would say a blob was already stored under the digest
    _interrupted(ctx, "POST", f"{LLMOS_BASE}/packages", "application/json", json.dumps(pkg.manifest).encode())
    after = listing(ctx)
    if after != before:
        raise CheckFailed("an interrupted install leaving the registry as it was", "the listing changed", exchange=ctx.wire.last)
    expect_error(ctx.wire.request("GET", f"{LLMOS_BASE}/models/{pkg.name}", auth="admin"), ("model_not_found",))
    return CheckOutcome(examples=2, triggered=2)


@check("delete_version")
def delete_version(ctx: Context) -> CheckOutcome:
    need_packages(ctx)
    subj: Subject = subject(ctx, "delete", count=3)
    v1, v2, v3 = subj.versions
    name = subj.name

    def delete(version: str) -> Any:
        return ctx.wire.request("DELETE", version_path(name, version), auth="admin")

    def refused(version: str, why: str) -> None:
        before = listing(ctx)
        exchange = delete(version)
        if exchange.status == 200:
            raise CheckFailed(f"deleting {why} refused with 409 state_conflict", "200: it was deleted", exchange=exchange)
        expect_error(exchange, ("state_conflict",))
        if listing(ctx) != before:
            raise CheckFailed(f"the refused delete of {why} changing nothing", "the listing changed", exchange=exchange)

    try:
        if perform(ctx, name, v2, "activate").resource["state"] != "ready":
            raise Skip(f"{name}@{v2} does not load on the target")
        refused(v2, "the active, loaded version")
        perform(ctx, name, v2, "unload")
        refused(v2, "the active version while other versions exist")
        perform(ctx, name, v3, "load")
        refused(v3, "a loaded version")
        done = delete(v1)
        body = ok_json(done, "DeletedObject")
        if body.get("deleted") is not True:
            raise CheckFailed("deleted: true", repr(body), exchange=done)
        expect_error(ctx.wire.request("GET", version_path(name, v1), auth="admin"), ("version_not_found",))
        model = get_model(ctx, name)
        if v1 in {v["version"] for v in model["versions"]}:
            raise CheckFailed(f"{v1} absent from the model's versions", repr([v["version"] for v in model["versions"]]), exchange=ctx.wire.last)
        everything = ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/models", auth="admin"), "ManagedModelList")
        for listed in everything["data"]:
            if listed["name"] == name and v1 in {v["version"] for v in listed["versions"]}:
                raise CheckFailed(f"{v1} absent from GET {LLMOS_BASE}/models", "still listed", exchange=ctx.wire.last)
        expect_error(delete(v1), ("version_not_found",))
    finally:
        discard(ctx, name)
    return CheckOutcome(examples=5, triggered=5)


@check("blob_download_exact")
def blob_download_exact(ctx: Context) -> CheckOutcome:
    base = fresh_package(ctx, "download")
    noise = random.Random(ctx.name("download")).randbytes(NOISE_BYTES)
    path = "extra/noise.dat"  # data no loader reads: not a weights suffix (".bin" is pickle's)
    extra = {"path": path, "digest": sha256_digest(noise), "size": len(noise), "role": "doc"}
    pkg = Package({**base.manifest, "files": [*base.manifest["files"], extra]}, {**base.files, path: noise})
    identity = {"Accept-Encoding": "identity"}  # the bytes themselves, not a compressed representation of them
    try:
        install(ctx, pkg)  # uploads the noise with put_blob first
        for digest, data in pkg.blobs().items():
            exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/blobs/{digest}", auth="admin", headers=identity)
            expect_status(exchange, 200)
            if exchange.body != data:
                raise CheckFailed(f"the {len(data)} bytes stored under {digest}", f"{len(exchange.body)} bytes whose digest is {sha256_digest(exchange.body)}", exchange=exchange)
        absent = sha256_digest(noise + b" never uploaded")
        expect_error(ctx.wire.request("GET", f"{LLMOS_BASE}/blobs/{absent}", auth="admin", headers=identity), ("blob_unknown",))
    finally:
        discard(ctx, pkg.name)
    count = len(pkg.blobs()) + 1
    return CheckOutcome(examples=count, triggered=count)
