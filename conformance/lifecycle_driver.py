"""What the lifecycle checks share: the model they act on, its actions, polling until settled, and removal.

The subject is the kit's own uploaded package when the target claims ``model-packages`` (one fresh model
name per check, so no check depends on another's leftovers), otherwise the vendor model named by
``--mm-model``, whose original state is restored at the end of the run.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmos_std.management import SETTLED_STATES
from llmos_std.operations import LLMOS_BASE
from llmos_std.signing import generate_key_pair, sign_package, signer_key_id

from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.bodies import CAPABILITY_OF, minimal_body, PATH_OF
from conformance.package import Package, build, choose
from conformance.verdicts import CheckFailed, Skip
from conformance.wire import Exchange

FAILING_VERSION = "0.0.1-unloadable"
POLL_FIRST_S = 0.01
POLL_MAX_S = 0.25


def version_path(name: str, version: str) -> str:
    return f"{LLMOS_BASE}/models/{name}/versions/{version}"


# ---------------------------------------------------------------- reading


def get_model(ctx: Context, name: str) -> dict[str, Any]:
    return dict(ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/models/{name}", auth="admin"), "ManagedModel"))


def get_version(ctx: Context, name: str, version: str) -> dict[str, Any]:
    body = dict(ok_json(ctx.wire.request("GET", version_path(name, version), auth="admin"), "ModelVersion"))
    if (body["name"], body["version"]) != (name, version):
        raise CheckFailed(f"the resource of {name}@{version}", f"{body['name']}@{body['version']}", exchange=ctx.wire.last)
    return body


def listing(ctx: Context) -> list[Any]:
    """The managed-model list reduced to what a refused or interrupted request must not change."""
    body = ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/models", auth="admin"), "ManagedModelList")
    return sorted(
        (m["name"], m["active_version"], sorted((v["version"], v["digest"], v["state"], v["active"]) for v in m["versions"]),
         [(h["version"], h["digest"]) for h in m["history"]])
        for m in body["data"]
    )


# ---------------------------------------------------------------- acting and settling


def act(ctx: Context, name: str, version: str, action: str) -> dict[str, Any]:
    """POST a lifecycle action; it must answer 202 with the ModelVersion it acts on."""
    exchange = ctx.wire.request("POST", f"{version_path(name, version)}/{action}", auth="admin")
    body = dict(ok_json(exchange, "ModelVersion", status=202))
    if (body["name"], body["version"]) != (name, version):
        raise CheckFailed(f"the ModelVersion of {name}@{version}", f"{body['name']}@{body['version']}", exchange=exchange)
    return body


def rollback(ctx: Context, name: str) -> dict[str, Any]:
    return dict(ok_json(ctx.wire.request("POST", f"{LLMOS_BASE}/models/{name}/rollback", auth="admin"), "ModelVersion", status=202))


def walk(action: str, before: str) -> list[str]:
    """The states an action takes a version through (the lifecycle table); the last is where it settles."""
    if action == "unload":
        return ["ready", "unloading", "installed"]
    if action == "activate" and before == "ready":
        return ["ready"]
    return [before, "loading", "ready"]  # "ready" stands for either end of a load: ready or failed


def deadline_s(ctx: Context) -> float:
    declared = ctx.limit("max_load_seconds")
    return float(declared) + 1.0 if declared else ctx.settings.timeout


@dataclass
class Settled:
    resource: dict[str, Any]
    observed: list[str] = field(default_factory=list)


def settle(ctx: Context, name: str, version: str, action: str, before: str, first: dict[str, Any]) -> Settled:
    """Poll the version until the action has settled, judging every observation against the action's walk.

    Polls may miss transitional states, so the observed states must be a walk along the table in order;
    an activation has settled once the version is ``failed``, or ``ready`` and active.
    """
    path = walk(action, before)
    ends = {"installed"} if action == "unload" else {"ready", "failed"}
    observed = [first["state"]]
    position = 0
    limit = deadline_s(ctx)
    started = time.monotonic()
    pause = POLL_FIRST_S
    resource = first
    while True:
        state = resource["state"]
        index = len(path) - 1 if state in ends else (path.index(state) if state in path else -1)
        if index < position:
            raise CheckFailed(f"{action} taking {name}@{version} through {' -> '.join(path)} (failed as an end of a load)",
                              f"the states {' -> '.join([before, *observed])}", exchange=ctx.wire.last)
        position = index
        done = state in ends and not (action == "activate" and state == "ready" and not resource["active"])
        if done:
            return Settled(resource, observed)
        if time.monotonic() - started > limit:
            raise CheckFailed(f"{action} of {name}@{version} settling within {limit:.0f} s (max_load_seconds)",
                              f"still {state!r} (active {resource['active']}) after {limit:.0f} s; states {observed}", exchange=ctx.wire.last)
        time.sleep(pause)
        pause = min(pause * 1.5, POLL_MAX_S)
        resource = get_version(ctx, name, version)
        if resource["state"] != observed[-1]:
            observed.append(resource["state"])


def perform(ctx: Context, name: str, version: str, action: str) -> Settled:
    """An action on a version, from 202 to settled."""
    before = get_version(ctx, name, version)["state"]
    return settle(ctx, name, version, action, before, act(ctx, name, version, action))


def ensure(ctx: Context, name: str, version: str, state: str) -> None:
    """Bring a version to ``ready`` or ``installed`` with the actions that lead there."""
    current = get_version(ctx, name, version)["state"]
    if current == state:
        return
    if state == "ready":
        if perform(ctx, name, version, "load").resource["state"] != "ready":
            raise Skip(f"{name}@{version} does not load on the target")
    elif current == "ready":
        perform(ctx, name, version, "unload")


# ---------------------------------------------------------------- serving


def serve(ctx: Context, subject: Subject, model_id: str) -> Exchange:
    body = {**minimal_body(subject.op, model_id, "hello", 2), "temperature": 0}
    return ctx.wire.request("POST", PATH_OF[subject.op], json_body=body)


def served_digest(ctx: Context, subject: Subject, model_id: str) -> str:
    """The package that answered a request for ``model_id``, by its LLMOS-Model-Digest header."""
    exchange = serve(ctx, subject, model_id)
    ok_json(exchange)
    digest = exchange.served_digest
    if not digest:
        raise CheckFailed("an LLMOS-Model-Digest header naming the serving package", "none", exchange=exchange)
    return digest


def expect_not_loaded(ctx: Context, subject: Subject, model_id: str) -> None:
    expect_error(serve(ctx, subject, model_id), ("model_not_loaded",))


# ---------------------------------------------------------------- the subject


@dataclass
class Subject:
    """A model the check may act on, and its versions (oldest install first) with their package digests."""

    name: str
    versions: list[str]
    digests: dict[str, str]
    own: bool
    op: str
    failing: str | None = None


def _serving_op(ctx: Context, capabilities: list[str]) -> str:
    for op in ("create_chat_completion", "create_completion", "create_embedding"):
        profile = "embeddings" if op == "create_embedding" else "inference"
        if CAPABILITY_OF[op] in capabilities and profile in ctx.plan.claimed:
            return op
    raise Skip("the model cannot be served by an operation the target claims (inference or embeddings)")


def subject(ctx: Context, role: str, *, count: int = 2, failing: bool = False, serving: bool = False, failing_optional: bool = False) -> Subject:
    """A fresh model of the kit's (model-packages claimed), or the --mm-model vendor model.

    ``failing`` adds a version that installs but cannot load; only the kit's own package has one, so a
    vendor model skips the check unless the failing version is ``failing_optional``.
    """
    if "model-packages" in ctx.plan.claimed:
        return own_subject(ctx, role, count=count, failing=failing, serving=serving)
    if ctx.settings.mm_model is None:
        raise Skip("needs a model to act on: the target does not claim model-packages (for the kit's own package) and no --mm-model was given")
    if failing and not failing_optional:
        raise Skip("needs a version that fails to load, which only an uploaded package provides; the target does not claim model-packages")
    return vendor_subject(ctx, count=count, serving=serving)


def package(ctx: Context, name: str, version: str, *, index: int, loadable: bool = True) -> Package:
    """The kit's package ``index`` under ``name`` (weights built once per run, then renamed)."""
    try:
        architecture, _format = choose(ctx.plan.discovery)
    except ValueError as exc:
        raise Skip(str(exc)) from None
    key = ("package", architecture, version, index, loadable)
    if key not in ctx.cache:
        seed = ctx.settings.seed * 1000 + index
        ctx.cache[key] = build("llmos-conformance-template", version, architecture=architecture, seed=seed, loadable=loadable)
    template: Package = ctx.cache[key]
    return template.renamed(name)


def upload(ctx: Context, pkg: Package) -> None:
    """PUT every blob of a package that HEAD does not find (a server may collect blobs of deleted versions)."""
    known: dict[str, bytes] = ctx.cache.setdefault("blob_bytes", {})
    known.update(pkg.blobs())
    for digest, data in pkg.blobs().items():
        if ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{digest}", auth="admin").status == 200:
            continue
        exchange = ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{digest}", content=data, content_type="application/octet-stream", auth="admin")
        ok_json(exchange, "BlobInfo", status=exchange.status if exchange.status in (200, 201) else 201)


def post_manifest(ctx: Context, manifest: dict[str, Any]) -> Exchange:
    return ctx.wire.request("POST", f"{LLMOS_BASE}/packages", json_body=signed(ctx, manifest), auth="admin")


def signed(ctx: Context, manifest: dict[str, Any]) -> dict[str, Any]:
    """On a target that installs only signed packages, the kit signs what it installs with its own key.

    Manifests that already carry signatures (the signature checks' own) and manifests naming a blob the
    kit never built (refusals judged before any signature) go as they are.
    """
    if "security-strict" not in ctx.plan.claimed or "signatures" in manifest:
        return manifest
    known: dict[str, bytes] = ctx.cache.get("blob_bytes", {})
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and f.get("digest") in known and isinstance(f.get("path"), str) for f in files):
        return manifest
    return {**manifest, "signatures": [sign_package(manifest, {f["path"]: known[f["digest"]] for f in files}, kit_signing_key(ctx))]}


def kit_signing_key(ctx: Context, role: str = "kit", *, trusted: bool = True) -> Path:
    """A signing key of this run (one per role), registered with the target's trust operation unless ``trusted`` is False."""
    key = ("signing_key", role)
    if key not in ctx.cache:
        folder = tempfile.TemporaryDirectory(prefix="llmos-conformance-keys-")
        ctx.cleanup.append(folder.cleanup)
        path = Path(folder.name) / f"{role}.pem"
        public = generate_key_pair(path)
        if trusted:
            exchange = ctx.wire.request("POST", f"{LLMOS_BASE}/trust/signers", auth="admin",
                                        json_body={"key_id": signer_key_id(public), "public_key": public.decode("ascii"), "note": ctx.name(f"signer-{role}")})
            signer = ok_json(exchange, "TrustedSigner", status=201)
            ctx.cleanup.append(lambda: _untrust(ctx, str(signer["id"])))
        ctx.cache[key] = (path, folder)
    return Path(ctx.cache[key][0])


def _untrust(ctx: Context, signer_id: str) -> None:
    ctx.wire.request("DELETE", f"{LLMOS_BASE}/trust/signers/{signer_id}", auth="admin")


def install(ctx: Context, pkg: Package) -> dict[str, Any]:
    """Upload and install one package; 201 with its ModelVersion is the only good answer."""
    upload(ctx, pkg)
    return dict(ok_json(post_manifest(ctx, pkg.manifest), "ModelVersion", status=201))


def own_subject(ctx: Context, role: str, *, count: int, failing: bool = False, serving: bool = False) -> Subject:
    name = ctx.name(role)
    op = _serving_op(ctx, ["chat", "text-generation"]) if serving else "create_chat_completion"
    packages = [package(ctx, name, f"{i}.0.0", index=i) for i in range(1, count + 1)]
    broken = package(ctx, name, FAILING_VERSION, index=0, loadable=False) if failing else None
    ctx.cleanup.append(lambda: discard(ctx, name))
    for pkg in packages + ([broken] if broken else []):
        install(ctx, pkg)
    return Subject(name, [p.version for p in packages], {p.version: p.digest for p in packages + ([broken] if broken else [])},
                   own=True, op=op, failing=broken.version if broken else None)


def vendor_subject(ctx: Context, *, count: int, serving: bool) -> Subject:
    name = str(ctx.settings.mm_model)
    exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/models/{name}", auth="admin")
    if exchange.status == 404:
        raise Skip(f"--mm-model {name!r} is not installed on the target")
    model = ok_json(exchange, "ManagedModel")
    versions = [v["version"] for v in model["versions"]]
    if len(versions) < count:
        raise Skip(f"--mm-model {name!r} has {len(versions)} version(s); this check needs {count}")
    if "vendor-restore" not in ctx.cache:
        ctx.cache["vendor-restore"] = model
        ctx.cleanup.append(lambda: restore(ctx, model))
    listed = next((m for m in ctx.plan.model_list if m.get("id") == name), {})
    op = _serving_op(ctx, list(listed.get("capabilities") or [])) if serving else "create_chat_completion"
    return Subject(name, versions[:count], {v["version"]: v["digest"] for v in model["versions"]}, own=False, op=op)


# ---------------------------------------------------------------- leaving no trace


def _quietly_settle(ctx: Context, name: str, version: str) -> str:
    started = time.monotonic()
    while True:
        exchange = ctx.wire.request("GET", version_path(name, version), auth="admin")
        state = str(exchange.json().get("state")) if exchange.status == 200 else "gone"
        if state in SETTLED_STATES or state == "gone" or time.monotonic() - started > deadline_s(ctx):
            return state
        time.sleep(POLL_MAX_S)


def discard(ctx: Context, name: str) -> None:
    """Unload and delete every version of one of the kit's models, inactive ones first; best effort."""
    try:
        exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/models/{name}", auth="admin")
        if exchange.status != 200:
            return
        versions = sorted(exchange.json()["versions"], key=lambda v: bool(v["active"]))
        for v in versions:
            if _quietly_settle(ctx, name, v["version"]) == "ready":
                ctx.wire.request("POST", f"{version_path(name, v['version'])}/unload", auth="admin")
                _quietly_settle(ctx, name, v["version"])
        for v in versions:
            ctx.wire.request("DELETE", version_path(name, v["version"]), auth="admin")
    except (CheckFailed, KeyError, TypeError, ValueError, AttributeError):
        return


def restore(ctx: Context, original: dict[str, Any]) -> None:
    """Put a vendor model back as it was: the same active version, the same versions loaded."""
    name = original["name"]
    try:
        if original["active_version"] is not None:
            ctx.wire.request("POST", f"{version_path(name, original['active_version'])}/activate", auth="admin")
            _quietly_settle(ctx, name, original["active_version"])
        for v in original["versions"]:
            state = _quietly_settle(ctx, name, v["version"])
            if v["state"] == "ready" and state in ("installed", "failed"):
                ctx.wire.request("POST", f"{version_path(name, v['version'])}/load", auth="admin")
            elif v["state"] != "ready" and state == "ready":
                ctx.wire.request("POST", f"{version_path(name, v['version'])}/unload", auth="admin")
            _quietly_settle(ctx, name, v["version"])
    except (CheckFailed, KeyError, TypeError, ValueError, AttributeError):
        return
