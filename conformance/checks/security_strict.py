"""security-strict: owner isolation, server-owned fields, a verifiable audit chain, no code in packages, signed packages.

Isolation is tested between two principals the kit creates through its admin key (keys for
``prn_llmos_conformance_<run>_a`` and ``_b``); the audit chain is recomputed here from the events as
listed, with the construction the spec gives, before the server's own verification is asked.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any, cast

from llmos_std.canonical import canonicalize, sha256_digest
from llmos_std.operations import LLMOS_BASE
from llmos_std.signing import public_key_of, sign_package, signer_key_id

from conformance.checks.security_standard import KEYS, all_events, as_key, mint, revoke
from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.lifecycle_driver import kit_signing_key, post_manifest
from conformance.package import Package
from conformance.registry import check
from conformance.uploads import fresh_package, refused_install, weights_index, with_files
from conformance.verdicts import CheckFailed, CheckOutcome, Failures
from conformance.wire import Exchange


def _principal(ctx: Context, suffix: str) -> str:
    return f"prn_llmos_conformance_{ctx.run_id}_{suffix}"


@check("owner_isolation")
def owner_isolation(ctx: Context) -> CheckOutcome:
    alice, _ = mint(ctx, "alice", ["keys:manage", "models:read"], principal=_principal(ctx, "a"))
    bob, _ = mint(ctx, "bob", ["keys:manage", "models:read"], principal=_principal(ctx, "b"))
    canary = f"llmos-conformance-{ctx.run_id}-canary-of-alice"
    made = as_key(ctx, alice, "POST", KEYS, {"name": canary, "scopes": ["models:read"]})
    alices_key = ok_json(made, "ApiKeyWithSecret", status=201)
    ctx.wire.also_redact(str(alices_key["secret"]))
    ctx.cleanup.append(lambda: revoke(ctx, str(alices_key["id"])))
    bobs: list[Exchange] = []
    with Failures() as failures:
        with failures.each():
            mine = as_key(ctx, alice, "GET", KEYS)
            if alices_key["id"] not in {k["id"] for k in ok_json(mine, "ApiKeyList")["data"]}:
                raise CheckFailed("alice's new key in alice's listing", "absent", exchange=mine)
        with failures.each():
            theirs = as_key(ctx, bob, "GET", KEYS)
            bobs.append(theirs)
            ids = {k["id"] for k in ok_json(theirs, "ApiKeyList")["data"]}
            if ids & {alices_key["id"], alice.id}:
                raise CheckFailed("none of alice's keys in bob's listing", f"{sorted(ids & {alices_key['id'], alice.id})}", exchange=theirs)
        for key_id in (alices_key["id"], alice.id):
            with failures.each():
                revoke = as_key(ctx, bob, "DELETE", f"{KEYS}/{key_id}")
                bobs.append(revoke)
                expect_error(revoke, ("key_not_found",))  # 404: to bob, alice's key does not exist
        with failures.each():
            still = as_key(ctx, alice, "GET", KEYS)
            if alices_key["id"] not in {k["id"] for k in ok_json(still, "ApiKeyList")["data"]}:
                raise CheckFailed("alice's key untouched by bob's attempt to revoke it", "gone", exchange=still)
        with failures.each():
            who = as_key(ctx, bob, "GET", f"{LLMOS_BASE}/principal")
            bobs.append(who)
            if ok_json(who, "Principal")["id"] != _principal(ctx, "b"):
                raise CheckFailed(f"bob's key standing for {_principal(ctx, 'b')}", repr(json.loads(who.body).get("id")), exchange=who)
        for exchange in bobs:
            with failures.each():
                if canary in exchange.body.decode("utf-8", errors="replace"):
                    raise CheckFailed("alice's canary in no response to bob", "it appears", exchange=exchange)
    return CheckOutcome(examples=4 + len(bobs), triggered=4 + len(bobs))


SERVER_FIELDS: dict[str, Any] = {"id": "key_chosen_by_client", "owner": "prn_someone_else", "created": 1, "prefix": "llmos-forged", "revoked": False, "secret": "llmos-chosen-secret-0123456789"}


@check("server_fields_readonly")
def server_fields_readonly(ctx: Context) -> CheckOutcome:
    if not ctx.wire.admin_key and not ctx.wire.api_key:
        mint(ctx, "never", ["models:read"])  # skips with the reason
    count = 0
    with Failures() as failures:
        for field, value in SERVER_FIELDS.items():
            count += 1
            with failures.each():
                body = {"name": ctx.name(f"forge-{field}"), "scopes": ["models:read"], field: value}
                exchange = ctx.wire.request("POST", KEYS, json_body=body, auth="admin")
                if exchange.status == 201:
                    created = json.loads(exchange.body)
                    ctx.wire.also_redact(str(created.get("secret", "")))
                    forged_id = str(created.get("id"))
                    ctx.cleanup.append(lambda: revoke(ctx, forged_id))
                    if created.get(field) == value:
                        raise CheckFailed(f"the server's own {field}, not the client's", f"{field} = the value the client sent", exchange=exchange)
                elif exchange.status != 400:
                    raise CheckFailed(f"400, or 201 ignoring the client's {field}", f"{exchange.status}", exchange=exchange)
    return CheckOutcome(examples=count, triggered=count)


def chain_link(event: dict[str, Any]) -> str:
    """The spec's construction, restated here so the kit checks it independently of the server."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(str(event.get("prev_hash", "")).encode("ascii") + canonicalize(body)).hexdigest()


@check("audit_chain_verifiable")
def audit_chain_verifiable(ctx: Context) -> CheckOutcome:
    mint(ctx, "chain", ["models:read"])  # at least one fresh event in the chain
    events, pages = all_events(ctx)
    prev = "0" * 64
    for event in events:
        if event.get("prev_hash") != prev:
            raise CheckFailed(f"event {event.get('seq')} chained to the hash of the one before", f"prev_hash {event.get('prev_hash')!r}", exchange=pages[-1])
        if chain_link(event) != event.get("hash"):
            raise CheckFailed(f"event {event.get('seq')}'s hash recomputable (SHA-256 of prev_hash + RFC 8785 form without hash)", f"hash {event.get('hash')!r}", exchange=pages[-1])
        prev = str(event["hash"])
    verified = ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/audit/verify", auth="admin"), "AuditVerification")
    if not verified["valid"] or verified["events"] < len(events):
        raise CheckFailed(f"/audit/verify valid over at least the {len(events)} events listed", repr(verified), exchange=ctx.wire.last)
    tampering = [("DELETE", f"{LLMOS_BASE}/audit/events"), ("DELETE", f"{LLMOS_BASE}/audit/events/{events[0]['id']}"),
                 ("PUT", f"{LLMOS_BASE}/audit/events/{events[0]['id']}"), ("POST", f"{LLMOS_BASE}/audit/events")]
    with Failures() as failures:
        for method, path in tampering:
            with failures.each():
                exchange = ctx.wire.request(method, path, json_body={"outcome": "success"} if method in ("PUT", "POST") else None, auth="admin")
                if exchange.status not in (404, 405):
                    raise CheckFailed(f"no API that changes the audit log ({method} {path}: 404 or 405)", f"{exchange.status}", exchange=exchange)
    again, _ = all_events(ctx)
    if [e["hash"] for e in again[: len(events)]] != [e["hash"] for e in events]:
        raise CheckFailed("the listed events unchanged", "an earlier event's hash changed", exchange=ctx.wire.last)
    return CheckOutcome(examples=len(events) + len(tampering), triggered=len(events))


@check("no_code_in_packages")
def no_code_in_packages(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "code")
    code = b"import os\nos.system('echo owned')\n"
    config = json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "auto_map": {"AutoModelForCausalLM": "modeling_evil.Evil"}}).encode()
    uploads: list[tuple[str, bytes, str]] = [("modeling_evil.py", code, "doc"), ("config.json", config, "config")]
    for _, data, _ in uploads:
        digest = sha256_digest(data)
        ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{digest}", content=data, content_type="application/octet-stream", auth="admin")
    files = pkg.manifest["files"]
    config_index = next(i for i, f in enumerate(files) if f["path"] == "config.json")
    variants = [
        {**pkg.manifest, "files": [*files, {"path": "modeling_evil.py", "digest": sha256_digest(code), "size": len(code), "role": "doc"}]},
        with_files(pkg.manifest, {"digest": sha256_digest(config), "size": len(config)}, config_index),
        with_files(pkg.manifest, {"path": "model.bin"}, weights_index(pkg.manifest)),
    ]
    with Failures() as failures:
        for manifest in variants:
            with failures.each():
                refused_install(ctx, manifest, ("format_forbidden", "weights_malformed") if manifest is variants[2] else ("format_forbidden",))
    return CheckOutcome(examples=len(variants), triggered=len(variants))



def _signature(ctx: Context, pkg: Package, role: str, *, trusted: bool = True) -> dict[str, Any]:
    return _signed_by(pkg, kit_signing_key(ctx, role, trusted=trusted))


def _signed_by(pkg: Package, key: Path) -> dict[str, Any]:
    return cast(dict[str, Any], sign_package(pkg.manifest, pkg.files, key))


def _installs(ctx: Context, manifest: dict[str, Any]) -> None:
    exchange = post_manifest(ctx, manifest)
    ok_json(exchange, "ModelVersion", status=201)


@check("signed_packages_only")
def signed_packages_only(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "signed")
    other = fresh_package(ctx, "signed-other", index=2)
    good = _signature(ctx, pkg, "kit")
    stranger = _signature(ctx, pkg, "stranger", trusted=False)
    forged = {**copy.deepcopy(stranger), "key_id": good["key_id"]}  # an untrusted signature claiming a trusted key
    reused = _signature(ctx, other, "kit")  # valid, trusted, but for another package
    tampered = copy.deepcopy(good)
    envelope = tampered["bundle"]["dsseEnvelope"]
    raw = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    raw[-1] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    cases: list[tuple[str, list[dict[str, Any]], tuple[str, ...]]] = [
        ("unsigned", [], ("signature_required",)),
        ("signed by an untrusted key", [stranger], ("untrusted_signer",)),
        ("an untrusted signature naming a trusted key", [forged], ("signature_mismatch",)),
        ("a trusted signature of another package", [reused], ("signature_mismatch",)),
        ("a trusted signature with one bit flipped", [tampered], ("signature_mismatch",)),
    ]
    with Failures() as failures:
        for _what, signatures, codes in cases:
            with failures.each():
                refused_install(ctx, {**pkg.manifest, "signatures": signatures}, codes)
        with failures.each():
            _installs(ctx, {**pkg.manifest, "signatures": [good]})
    return CheckOutcome(examples=len(cases) + 1, triggered=len(cases) + 1)


@check("trust_from_configuration")
def trust_from_configuration(ctx: Context) -> CheckOutcome:
    signers = f"{LLMOS_BASE}/trust/signers"
    listed = ok_json(ctx.wire.request("GET", signers, auth="admin"), "TrustedSignerList")
    configured = next((s["id"] for s in listed["data"] if s.get("source") == "configuration"), f"sgn_{ctx.run_id}_absent")
    expect_error(ctx.wire.request("DELETE", f"{signers}/{configured}", auth="admin"), ("signer_not_found",))  # not the API's to remove
    publisher, _ = mint(ctx, "publisher", ["packages:write", "models:read"])
    newcomer_path = kit_signing_key(ctx, "newcomer", trusted=False)
    public = public_key_of(newcomer_path)
    with Failures() as failures:
        with failures.each():
            _admin_only(as_key(ctx, publisher, "POST", signers, {"key_id": signer_key_id(public), "public_key": public.decode(), "note": "self-trust"}))
        with failures.each():
            _admin_only(as_key(ctx, publisher, "GET", signers))
    pkg = fresh_package(ctx, "trust")
    signature = _signed_by(pkg, newcomer_path)
    # The package carries the key itself (as sigstore bundles may): it still must not be trusted for it.
    signature["bundle"]["verificationMaterial"]["publicKey"]["rawBytes"] = base64.b64encode(public).decode()
    manifest = {**pkg.manifest, "signatures": [signature]}
    refused_install(ctx, manifest, ("untrusted_signer",))
    added = ok_json(ctx.wire.request("POST", signers, json_body={"key_id": signer_key_id(public), "public_key": public.decode(), "note": ctx.name("newcomer")}, auth="admin"), "TrustedSigner", status=201)
    removed = False
    try:
        _installs(ctx, manifest)  # trusted by the operator now: the same package installs
        ok_json(ctx.wire.request("DELETE", f"{signers}/{added['id']}", auth="admin"), "DeletedObject")
        removed = True
        later = fresh_package(ctx, "trust-later", index=2)
        refused_install(ctx, {**later.manifest, "signatures": [_signed_by(later, newcomer_path)]}, ("untrusted_signer",))
    finally:
        if not removed:
            ctx.wire.request("DELETE", f"{signers}/{added['id']}", auth="admin")
    return CheckOutcome(examples=5, triggered=5)


def _admin_only(exchange: Exchange) -> None:
    """The trust operations are admin-scoped: a publisher cannot trust its own key."""
    expect_error(exchange, ("insufficient_scope",))
