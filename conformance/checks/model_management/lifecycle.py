"""model-management and model-packages on what the target already holds: listings, conflicts, unknown
names, blobs and manifests. Every request these checks send either fails by requirement or is idempotent
(blobs are content-addressed under the run's own bytes); the checks that install and act on a package of
the kit's own live in management.py, packages.py and statemachine.py.
"""

from __future__ import annotations

from typing import Any

from llmos_std.canonical import sha256_digest
from llmos_std.management import ALLOWED_FROM
from llmos_std.manifest import manifest_digest
from llmos_std.operations import LLMOS_BASE

from conformance.context import Context
from conformance.judging import expect_error, expect_status, ok_json
from conformance.registry import check
from conformance.verdicts import CheckFailed, CheckOutcome, Skip



def _managed(ctx: Context) -> list[dict[str, Any]]:
    body = ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/models", auth="admin"), "ManagedModelList")
    return list(body["data"])


def _subject(ctx: Context) -> dict[str, Any]:
    # The kit's own models come and go with the checks that create them; judge the target's own.
    models = [m for m in _managed(ctx) if not m["name"].startswith("llmos-conformance-")]
    if ctx.settings.mm_model:
        found = [m for m in models if m["name"] == ctx.settings.mm_model]
        if not found:
            raise Skip(f"--mm-model {ctx.settings.mm_model!r} is not installed on the target")
        return found[0]
    if not models:
        raise Skip("the target lists no installed model to exercise")
    return models[0]


@check("managed_models_listed")
def managed_models_listed(ctx: Context) -> CheckOutcome:
    models = _managed(ctx)
    for model in models:
        exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/models/{model['name']}", auth="admin")
        one = ok_json(exchange, "ManagedModel")
        if one["name"] != model["name"] or {v["version"] for v in one["versions"]} != {v["version"] for v in model["versions"]}:
            raise CheckFailed("the same versions in the list and the model resource", f"{one['versions']!r}", exchange=exchange)
        active = [v["version"] for v in one["versions"] if v["active"]]
        if one["active_version"] is not None and active != [one["active_version"]]:
            raise CheckFailed(f"exactly the active_version {one['active_version']!r} flagged active", repr(active), exchange=exchange)
    return CheckOutcome(examples=len(models), triggered=len(models))


@check("lifecycle_unknown_404")
def lifecycle_unknown_404(ctx: Context) -> CheckOutcome:
    subject = _subject(ctx)
    absent = ctx.name("absent")
    cases = [
        ("GET", f"{LLMOS_BASE}/models/{absent}", "model_not_found"),
        ("GET", f"{LLMOS_BASE}/models/{absent}/versions/1.0.0", "model_not_found"),
        ("POST", f"{LLMOS_BASE}/models/{absent}/versions/1.0.0/load", "model_not_found"),
        ("POST", f"{LLMOS_BASE}/models/{absent}/rollback", "model_not_found"),
        ("GET", f"{LLMOS_BASE}/models/{subject['name']}/versions/999.0.0-llmos-conformance", "version_not_found"),
        ("POST", f"{LLMOS_BASE}/models/{subject['name']}/versions/999.0.0-llmos-conformance/activate", "version_not_found"),
    ]
    for method, path, code in cases:
        expect_error(ctx.wire.request(method, path, auth="admin"), (code,))
    return CheckOutcome(examples=len(cases), triggered=len(cases))


@check("lifecycle_conflicts_409")
def lifecycle_conflicts_409(ctx: Context) -> CheckOutcome:
    subject = _subject(ctx)
    count = 0
    for version in subject["versions"]:
        for action in ("load", "unload"):
            if version["state"] in ALLOWED_FROM[action] or version["state"] in ("loading", "unloading"):
                continue
            path = f"{LLMOS_BASE}/models/{subject['name']}/versions/{version['version']}"
            expect_error(ctx.wire.request("POST", f"{path}/{action}", auth="admin"), ("state_conflict",))
            after = ok_json(ctx.wire.request("GET", path, auth="admin"), "ModelVersion")
            if after["state"] != version["state"] or after["active"] != version["active"]:
                raise CheckFailed("a refused action changing nothing", f"state {version['state']} -> {after['state']}", exchange=ctx.wire.last)
            count += 1
    if not count:
        raise Skip("no installed version is in a state that refuses load or unload")
    return CheckOutcome(examples=count, triggered=count)


@check("get_manifest")
def get_manifest(ctx: Context) -> CheckOutcome:
    subject = _subject(ctx)
    count = 0
    for version in subject["versions"]:
        body = ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/packages/{version['digest']}", auth="admin"), "PackageManifest")
        if (body["name"], body["version"]) != (subject["name"], version["version"]):
            raise CheckFailed(f"the manifest of {subject['name']}@{version['version']}", f"{body['name']}@{body['version']}", exchange=ctx.wire.last)
        count += 1
    expect_error(ctx.wire.request("GET", f"{LLMOS_BASE}/packages/sha256:{'0' * 64}", auth="admin"), ("package_not_found",))
    expect_error(ctx.wire.request("GET", f"{LLMOS_BASE}/packages/sha256:not-hex", auth="admin"), ("digest_invalid",))
    return CheckOutcome(examples=count + 2, triggered=count + 2)


@check("package_digest_canonical")
def package_digest_canonical(ctx: Context) -> CheckOutcome:
    subject = _subject(ctx)
    count = 0
    for version in subject["versions"]:
        body = ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/packages/{version['digest']}", auth="admin"))
        computed = manifest_digest(body)
        if computed != version["digest"]:
            raise CheckFailed(f"digest {computed} (sha256 of the canonical manifest without signatures)", version["digest"], exchange=ctx.wire.last)
        count += 1
    return CheckOutcome(examples=count, triggered=count)


def _blob(ctx: Context) -> tuple[bytes, str]:
    data = f"{ctx.name('blob')}\n".encode()
    return data, sha256_digest(data)


@check("blob_upload_verified")
def blob_upload_verified(ctx: Context) -> CheckOutcome:
    data, digest = _blob(ctx)
    wrong = sha256_digest(data + b"x")
    expect_error(ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{wrong}", content=data, content_type="application/octet-stream", auth="admin"), ("digest_invalid",))
    head = ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{wrong}", auth="admin")
    expect_status(head, 404)
    put = ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{digest}", content=data, content_type="application/octet-stream", auth="admin")
    expect_status(put, 201, 200)
    ok_json(put, "BlobInfo", status=put.status)
    return CheckOutcome(examples=2, triggered=2)


@check("blob_head_and_idempotent")
def blob_head_and_idempotent(ctx: Context) -> CheckOutcome:
    data, digest = _blob(ctx)
    for _ in range(2):
        put = ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{digest}", content=data, content_type="application/octet-stream", auth="admin")
        expect_status(put, 201, 200)
    expect_status(put, 200)
    expect_status(ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{digest}", auth="admin"), 200)
    absent = sha256_digest(data + b"absent")
    expect_status(ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{absent}", auth="admin"), 404)
    expect_status(ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/sha256:{absent[7:].upper()}", auth="admin"), 400)  # malformed: upper-case hex
    return CheckOutcome(examples=4, triggered=4)
