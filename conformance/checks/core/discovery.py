"""core: discovery, health, declared limits, the model list and model ids."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from hypothesis import strategies as st

from llmos_std.models import is_model_id
from llmos_std.operations import LLMOS_BASE, VERSION_HEADER
from llmos_std.profiles import closure

from conformance.bodies import CAPABILITY_OF, PATH_OF, minimal_body
from conformance.context import Context
from conformance.judging import expect_error, expect_status, ok_json, validate
from conformance.properties import run_property
from conformance.registry import check
from conformance.traffic import available_ops, first_op, post
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip


@check("discovery_document_valid")
def discovery_document_valid(ctx: Context) -> CheckOutcome:
    exchange = ctx.wire.request("GET", "/.well-known/llmos", auth=None)
    ok_json(exchange, "DiscoveryDocument")
    return CheckOutcome()


@check("discovery_claims_consistent")
def discovery_claims_consistent(ctx: Context) -> CheckOutcome:
    exchange = ctx.wire.request("GET", "/.well-known/llmos", auth=None)
    body = ok_json(exchange, "DiscoveryDocument")
    if not re.fullmatch(r"\d+\.\d+", str(body.get("standard_version"))):
        raise CheckFailed("standard_version MAJOR.MINOR", repr(body.get("standard_version")), exchange=exchange)
    claimed = body["profiles"]
    missing = [p for p in closure(claimed) if p not in claimed]
    if missing:
        raise CheckFailed("every profile a claimed profile depends on listed too", f"missing {missing}", exchange=exchange)
    return CheckOutcome()


@check("version_header_present")
def version_header_present(ctx: Context) -> CheckOutcome:
    want = ctx.plan.standard_version
    probes: list[tuple[str, str, dict[str, Any] | None]] = [("GET", "/v1/models", None), ("GET", "/llmos/v1/health/live", None), ("GET", f"/v1/{ctx.name('absent-route')}", None)]
    for op in available_ops(ctx):
        probes.append(("POST", PATH_OF[op], minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])))
        probes.append(("POST", PATH_OF[op], {"model": ctx.name("absent")}))
    with Failures() as failures:
        for method, path, body in probes:
            with failures.each():
                exchange = ctx.wire.request(method, path, json_body=body)
                seen = exchange.headers.get(VERSION_HEADER)
                if seen != want:
                    raise CheckFailed(f"LLMOS-Version: {want}", f"{seen!r} on {method} {path} ({exchange.status})", exchange=exchange)
    return CheckOutcome(examples=len(probes), triggered=len(probes))


@check("declared_limits_enforced")
def declared_limits_enforced(ctx: Context) -> CheckOutcome:
    if ctx.plan.discovery is None:
        raise Skip("the target serves no discovery document, so declares no limits")
    probes: list[tuple[str, dict[str, Any], str]] = []
    ops = available_ops(ctx)
    gen = [op for op in ops if op != "create_embedding"]
    if gen:
        op = gen[0]
        base = minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])
        if (n := ctx.limit("max_n")) is not None:
            probes.append((op, {**base, "n": n + 1}, "n"))
        if (s := ctx.limit("max_stop")) is not None:
            probes.append((op, {**base, "stop": [f"zz{i}" for i in range(s + 1)]}, "stop"))
        if (t := ctx.limit("max_tokens")) is not None:
            probes.append((op, {**base, "max_tokens": t + 1}, "max_tokens"))
        if (b := ctx.limit("max_batch")) is not None and "create_completion" in gen:
            probes.append(("create_completion", {**minimal_body("create_completion", ctx.model("text-generation")["id"]), "prompt": ["hi"] * (b + 1)}, "prompt"))
    if "create_embedding" in ops and (b := ctx.limit("max_batch")) is not None:
        probes.append(("create_embedding", {"model": ctx.model("embeddings")["id"], "input": ["hi"] * (b + 1)}, "input"))
    count = len(probes)
    size = ctx.limit("max_body_bytes")
    with Failures() as failures:
        for op, body, param in probes:
            with failures.each():
                expect_error(post(ctx, op, body), ("limit_exceeded",), param=param)
        if size is not None and size <= 64 * 1024 * 1024 and ops:
            op = ops[0]
            filler = "x" * (size + 1)
            count += 1
            with failures.each():
                exchange = ctx.wire.request("POST", PATH_OF[op], content=json.dumps({**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"]), "user": filler}).encode(), content_type="application/json")
                expect_error(exchange, ("payload_too_large",))
    if not count:
        raise Skip("no claimed operation to exceed a declared limit on")
    return CheckOutcome(examples=count, triggered=count)


@check("health_endpoints")
def health_endpoints(ctx: Context) -> CheckOutcome:
    for path in ("/llmos/v1/health/live", "/llmos/v1/health/ready"):
        exchange = ctx.wire.request("GET", path, auth=None)
        expect_status(exchange, 200, 503)
        body = exchange.json()
        validate("Health", body, exchange)
        if (exchange.status == 200) != (body["status"] == "ok"):
            raise CheckFailed("status ok with 200 and unavailable with 503", f"{exchange.status} with {body['status']!r}", exchange=exchange)
    return CheckOutcome(examples=2, triggered=2)


def _json_or_none(body: bytes) -> Any:
    """A body judged by other requirements when it is not JSON (the model list, the Health shape)."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def replica_problems(replicas: list[dict[str, Any]], ready_versions: Iterable[str]) -> list[str]:
    """What is wrong with a schema-valid ``replicas`` list: an id listed twice, a ready replica without a ready version."""
    problems: list[str] = []
    ids = [str(r["id"]) for r in replicas]
    if repeated := sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"replica ids listed more than once: {repeated}")
    wanted = set(ready_versions)
    for replica in replicas:
        if replica["state"] == "ready" and (missing := sorted(wanted - set(replica["models"]))):
            problems.append(f"replica {replica['id']!r} is ready without the ready versions {missing}")
    return problems


@check("replicas_reported")
def replicas_reported(ctx: Context) -> CheckOutcome:
    # The versions first: a version ready then is on every replica that is ready a moment later (replicas become ready loaded).
    listed = _json_or_none(ctx.wire.request("GET", "/v1/models").body)
    models = listed.get("data") if isinstance(listed, dict) else None
    ready = [m["digest"] for m in models if isinstance(m, dict) and m.get("state") == "ready" and isinstance(m.get("digest"), str)] if isinstance(models, list) else []
    exchange = ctx.wire.request("GET", "/llmos/v1/health/ready", auth=None)
    body = _json_or_none(exchange.body)
    if not isinstance(body, dict) or body.get("replicas") is None:
        raise Skip("the readiness answer lists no replicas (a server with one engine has none to list)")
    validate("Health", body, exchange)
    problems = replica_problems(body["replicas"], ready)
    if problems:
        raise CheckFailed("replicas with unique ids, each ready one holding every version /v1/models lists as ready", "; ".join(problems), exchange=exchange)
    return CheckOutcome(examples=len(body["replicas"]), triggered=len(body["replicas"]))


@check("ready_after_abuse")
def ready_after_abuse(ctx: Context) -> CheckOutcome:
    op = first_op(ctx)
    abuse = [b"{", b"\x00\xff\xfe", b"[]", json.dumps({"model": ctx.name("absent"), "prompt": 7}).encode(), b'{"model": ' + b"[" * 2000 + b"]" * 2000 + b"}"]
    for body in abuse:
        _tolerant(lambda: ctx.wire.request("POST", PATH_OF[op], content=body, content_type="application/json"))
    _tolerant(lambda: ctx.wire.request("GET", "/v1/" + "a" * 4000))
    exchange = ctx.wire.request("GET", "/llmos/v1/health/ready", auth=None)
    expect_status(exchange, 200)
    return CheckOutcome(examples=len(abuse) + 1, triggered=len(abuse) + 1)


def _tolerant(send: Any) -> None:
    """Abuse may be answered with anything, even a reset; only readiness afterwards is judged."""
    try:
        send()
    except CheckFailed:
        pass


@check("models_list_valid")
def models_list_valid(ctx: Context) -> CheckOutcome:
    body = ok_json(ctx.wire.request("GET", "/v1/models"), "ModelList")
    return CheckOutcome(examples=len(body["data"]), triggered=len(body["data"]))


@check("unknown_model_404")
def unknown_model_404(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation")
    names = [ctx.name("absent"), ctx.name("absent") + "@1.0.0", ctx.name("absent") + "@sha256:" + "0" * 64]
    for model in ctx.plan.model_list[:1]:
        names += [f"{model['id']}@999.999.999", f"{model['id']}@sha256:{'f' * 64}"]
    with Failures() as failures:
        for op in ops:
            for name in names:
                with failures.each():
                    expect_error(post(ctx, op, minimal_body(op, name)), ("model_not_found",))
    return CheckOutcome(examples=len(ops) * len(names), triggered=len(ops) * len(names))


@check("model_id_syntax")
def model_id_syntax(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation")
    count = 0
    unpinnable: list[str] = []
    with Failures() as failures:
        for op in ops:
            model = ctx.model(CAPABILITY_OF[op])
            name = str(model["id"])
            if ctx.plan.model_sources.get(CAPABILITY_OF[op]) == "configured" and "@" in name:
                name = name.rpartition("@")[0]  # --model CAP=name@pin: the bare name is the listed one
            digest = model.get("digest") if isinstance(model.get("digest"), str) else None
            refs = [name] + [f"{name}@{pin}" for pin in (model.get("version"), digest) if isinstance(pin, str) and pin]
            if len(refs) < 3:
                unpinnable.append(name)
            for ref in refs:
                count += 1
                with failures.each():
                    exchange = post(ctx, op, minimal_body(op, ref))
                    expect_status(exchange, 200)
                    if digest is not None and exchange.served_digest != digest:
                        raise CheckFailed(f"served by the active version {digest}", f"LLMOS-Model-Digest {exchange.served_digest!r}", exchange=exchange)
    if unpinnable and count == len(unpinnable):
        raise Skip(f"the model list states no version or digest for {', '.join(map(repr, unpinnable))} (LLMOS-MOD-001), so no pinned id can be formed; the bare names were served")
    return CheckOutcome(examples=count, triggered=count)


@check("malformed_model_id")
def malformed_model_id(ctx: Context) -> CheckOutcome:
    op = first_op(ctx)
    ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20).filter(lambda s: not is_model_id(s)) | st.sampled_from(["a//b", "a@b", "a@sha256:xyz", "-lead", "a b", "../x", "name@latest"])

    def prop(model_id: str) -> bool:
        expect_error(post(ctx, op, minimal_body(op, model_id)), ("invalid_model_id", "model_not_found"))
        return True

    return run_property(ctx, ids, prop, examples=ctx.settings.max_examples, what="malformed model ids")


@check("served_openapi_matches_auth")
def served_openapi_matches_auth(ctx: Context) -> CheckOutcome:
    document = ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/openapi.json"))
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.") or not isinstance(document.get("paths"), dict):
        raise CheckFailed("an OpenAPI 3.x document", f"{str(document)[:160]}")
    keyed = "bearer" in ((ctx.plan.discovery or {}).get("auth") or [])
    count = 0
    for path, item in document["paths"].items():
        for method, operation in (item or {}).items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            count += 1
            security = operation.get("security", document.get("security", []))
            needs_key = isinstance(security, list) and any(security)
            public = path in ("/.well-known/llmos",) or path.startswith(f"{LLMOS_BASE}/health/")
            if keyed and not public and not needs_key:
                raise CheckFailed(f"{method.upper()} {path} documented as needing the bearer key (discovery says auth is bearer)", f"security {security!r}")
            if not keyed and needs_key:
                raise CheckFailed(f"{method.upper()} {path} documented without security (discovery says no keys)", f"security {security!r}")
    return CheckOutcome(examples=count, triggered=count)


@check("retrieve_model")
def retrieve_model(ctx: Context) -> CheckOutcome:
    listed = ctx.plan.model_list[:5]
    if not listed:
        raise Skip("the target lists no model to retrieve")
    with Failures() as failures:
        for model in listed:
            with failures.each():
                # Sent as listed, "/" included: what the OpenAI SDK's models.retrieve(id) does.
                exchange = ctx.wire.request("GET", f"/v1/models/{model['id']}")
                body = ok_json(exchange)
                if not isinstance(body, dict) or body.get("id") != model["id"] or body.get("object") != "model":
                    raise CheckFailed(f"the model object of {model['id']!r}", repr(body)[:200], exchange=exchange)
                if body != model:
                    raise CheckFailed("the same object GET /v1/models lists", f"{ {k: body.get(k) for k in body if body.get(k) != model.get(k)} }", exchange=exchange)
        with failures.each():
            expect_error(ctx.wire.request("GET", f"/v1/models/{ctx.name('absent')}"), ("model_not_found",))
    return CheckOutcome(examples=len(listed) + 1, triggered=len(listed) + 1)
