"""Defects in model management and packages: each wraps one request to the reference app (``around``).

They may read or change the app's registry and runtime, as a broken server would, to break exactly one
lifecycle or package requirement; the rest of the server keeps working.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Scope

from llmos_std.semver import SemVer

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, Headers, bytes]
KIT_PREFIX = "llmos-conformance-"
_VERSION = re.compile(r"^/llmos/v1/models/([^/]+)/versions/([^/]+)(/[a-z]+)?$")
_ROLLBACK = re.compile(r"^/llmos/v1/models/([^/]+)/rollback$")


@dataclass
class Call:
    """One buffered request; ``send`` runs it (or a changed copy) through the app and returns the response."""

    app: ASGIApp
    scope: Scope
    body: bytes

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def state(self) -> Any:
        return self.app.state  # type: ignore[attr-defined]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    async def send(self, *, path: str | None = None, body: bytes | None = None) -> Response:
        body = self.body if body is None else body
        headers = [(k, v) for k, v in self.scope["headers"] if k.lower() != b"content-length"] + [(b"content-length", str(len(body)).encode())]
        scope = {**self.scope, "headers": headers}
        if path is not None:
            scope.update(path=path, raw_path=path.encode())
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        start: dict[str, Any] = {}
        out = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                out.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        return int(start["status"]), list(start.get("headers", [])), bytes(out)


Around = Callable[[Call], Awaitable[Response]]


def _doc(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _json_response(status: int, doc: Any, headers: Headers | None = None) -> Response:
    body = json.dumps(doc).encode()
    kept = [(k, v) for k, v in (headers or []) if k.lower() not in (b"content-length", b"content-type")]
    return status, kept + [(b"content-type", b"application/json")], body


def _error(status: int, code: str, message: str, param: str | None = None) -> Response:
    return _json_response(status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})


# ---------------------------------------------------------------- model-management


async def load_answers_200(call: Call) -> Response:
    status, headers, body = await call.send()
    if call.method == "POST" and call.path.endswith("/load") and status == 202:
        return 200, headers, body
    return status, headers, body


async def failed_load_unloads_active(call: Call) -> Response:
    """A version seen failed takes the model's active version down with it."""
    status, headers, body = await call.send()
    match = _VERSION.match(call.path)
    doc = _doc(body)
    if call.method == "GET" and match and not match.group(3) and isinstance(doc, dict) and doc.get("state") == "failed":
        registry, runtime = call.state.registry, call.state.runtime
        active = registry.active_version(match.group(1))
        if active is not None and runtime.state(active) == "ready":
            runtime.unload(active)
    return status, headers, body


async def rollback_to_newest(call: Call) -> Response:
    """Rollback re-activates the highest SemVer version other than the active one, ignoring the history."""
    match = _ROLLBACK.match(call.path)
    if call.method != "POST" or match is None:
        return await call.send()
    name = match.group(1)
    registry = call.state.registry
    active = registry.active_version(name)
    others = [v for v in registry.versions(name) if active is None or v.digest != active.digest]
    if not others or active is None:
        return await call.send()
    newest = max(others, key=lambda v: SemVer.parse(v.version).precedence_key())
    return await call.send(path=f"/llmos/v1/models/{name}/versions/{newest.version}/activate")


def serving_not_switched() -> Around:
    """The bare name keeps going to the version that first served it, whatever was activated since."""
    pinned: dict[str, str] = {}

    async def around(call: Call) -> Response:
        doc = call.json()
        model = doc.get("model") if isinstance(doc, dict) and call.path in ("/v1/chat/completions", "/v1/completions") else None
        if not (isinstance(model, str) and model.startswith(KIT_PREFIX) and "@" not in model):
            return await call.send()
        if model in pinned:
            return await call.send(body=json.dumps({**doc, "model": f"{model}@{pinned[model]}"}).encode())
        status, headers, body = await call.send()
        digest = dict(headers).get(b"llmos-model-digest")
        if status == 200 and digest:
            pinned[model] = digest.decode()
        return status, headers, body

    return around


def overflow_refused_429() -> Around:
    """Past the declared max_concurrent, inference is refused 429 without Retry-After: a rate limiter used as a queue."""
    in_flight = 0

    async def around(call: Call) -> Response:
        nonlocal in_flight
        if call.method != "POST":
            return await call.send()
        if in_flight >= call.state.settings.limits.max_concurrent:
            return _error(429, "rate_limited", "too many requests")
        in_flight += 1
        try:
            return await call.send()
        finally:
            in_flight -= 1

    return around


async def unload_cuts_in_flight(call: Call) -> Response:
    """Unload releases the model at once instead of waiting for the requests still running on it."""
    match = _VERSION.match(call.path)
    if call.method == "POST" and match and match.group(3) == "/unload":
        runtime = call.state.runtime
        version = runtime.find(match.group(1), match.group(2))
        with runtime._lock:  # noqa: SLF001 - the defect reaches into the runtime on purpose
            runtime._slot(version.digest).in_flight = 0  # noqa: SLF001
    return await call.send()


async def not_loaded_as_not_found(call: Call) -> Response:
    status, headers, body = await call.send()
    doc = _doc(body)
    if status == 409 and isinstance(doc, dict) and (doc.get("error") or {}).get("code") == "model_not_loaded":
        doc["error"].update(code="model_not_found", type="not_found_error")
        return _json_response(404, doc, headers)
    return status, headers, body


async def failed_reported_installed(call: Call) -> Response:
    """A version whose load failed is shown as merely installed (and without its error)."""
    status, headers, body = await call.send()
    doc = _doc(body)
    if call.method != "GET" or status != 200 or not isinstance(doc, dict):
        return status, headers, body
    versions = doc.get("versions") if doc.get("object") == "llmos.model" else [doc] if doc.get("object") == "llmos.model_version" else []
    for version in versions or []:
        if version.get("state") == "failed":
            version.update(state="installed", error=None)
    return _json_response(status, doc, headers)


# ---------------------------------------------------------------- model-packages


def _install(call: Call) -> bool:
    return call.method == "POST" and call.path == "/llmos/v1/packages"


async def install_digest_reserialised(call: Call) -> Response:
    """The installed version's digest is the hash of the re-serialised JSON, not of the canonical manifest."""
    status, headers, body = await call.send()
    doc = _doc(body)
    if _install(call) and status == 201 and isinstance(doc, dict):
        doc["digest"] = "sha256:" + hashlib.sha256(json.dumps(call.json()).encode()).hexdigest()
        return _json_response(status, doc, headers)
    return status, headers, body


async def traversal_stored_anyway(call: Call) -> Response:
    """A path that escapes the package is refused, but the package is installed with the path cleaned."""
    doc = call.json()
    if not (_install(call) and isinstance(doc, dict) and any(".." in str(f.get("path")) for f in doc.get("files") or [] if isinstance(f, dict))):
        return await call.send()
    files = [{**f, "path": str(f["path"]).replace("../", "")} for f in doc["files"]]
    await call.send(body=json.dumps({**doc, "files": files}).encode())
    return _error(400, "path_invalid", "a path escapes the package", "files.0.path")


async def sizes_unchecked(call: Call) -> Response:
    """Declared file sizes are not compared with the stored blobs: the install goes through with the real ones."""
    status, headers, body = await call.send()
    doc, manifest = _doc(body), call.json()
    if _install(call) and status == 400 and isinstance(doc, dict) and str((doc.get("error") or {}).get("param", "")).endswith(".size"):
        registry = call.state.registry
        files = [{**f, "size": registry.blob_size(f["digest"]) or f["size"]} for f in manifest["files"]]
        return await call.send(body=json.dumps({**manifest, "files": files}).encode())
    return status, headers, body


async def pickle_accepted(call: Call) -> Response:
    doc = call.json()
    if _install(call) and isinstance(doc, dict) and doc.get("format") == "pytorch-pickle":
        return _json_response(201, {"object": "llmos.model_version", "name": doc.get("name"), "version": doc.get("version"),
                                    "digest": "sha256:" + "0" * 64, "state": "installed", "active": False,
                                    "installed_at": 0, "state_changed_at": 0, "owner": "local", "error": None})
    return await call.send()


async def repeat_install_created(call: Call) -> Response:
    status, headers, body = await call.send()
    return (201 if _install(call) and status == 200 else status), headers, body


async def partial_blob_kept(call: Call) -> Response:
    """An upload cut short is kept under its digest, unverified."""
    declared = dict(call.scope["headers"]).get(b"content-length")
    if call.method == "PUT" and call.path.startswith("/llmos/v1/blobs/") and declared and int(declared) > len(call.body):
        registry = call.state.registry
        digest = call.path.rsplit("/", 1)[-1]
        registry._blob_path(digest).write_bytes(call.body)  # noqa: SLF001 - the defect bypasses verification on purpose
        return _json_response(201, {"object": "llmos.blob", "digest": digest, "size": len(call.body)})
    return await call.send()


async def active_delete_allowed(call: Call) -> Response:
    """Deleting the active version goes through when it is unloaded, although other versions exist."""
    match = _VERSION.match(call.path)
    if call.method == "DELETE" and match and not match.group(3):
        registry, runtime = call.state.registry, call.state.runtime
        version = registry.find(match.group(1), version=match.group(2))
        active = registry.active_version(match.group(1))
        if version is not None and active is not None and active.digest == version.digest and runtime.state(version) == "installed":
            registry.delete_version(version.name, version.version)
            return _json_response(200, {"id": f"{version.name}@{version.version}", "object": "llmos.model_version", "deleted": True})
    return await call.send()


def around_defects() -> list[tuple[str, str, str, Around]]:
    """(defect name, the requirement it breaks, the path prefix it wraps, the wrapper); fresh state per call."""
    return [
        ("load_answers_200", "LLMOS-MGMT-002", "/llmos/", load_answers_200),
        ("failed_reported_installed", "LLMOS-MGMT-003", "/llmos/", failed_reported_installed),
        ("serving_not_switched", "LLMOS-MGMT-005", "/v1/", serving_not_switched()),
        ("rollback_to_newest", "LLMOS-MGMT-006", "/llmos/", rollback_to_newest),
        ("failed_load_unloads_active", "LLMOS-MGMT-007", "/llmos/", failed_load_unloads_active),
        ("unload_cuts_in_flight", "LLMOS-MGMT-008", "/llmos/", unload_cuts_in_flight),
        ("not_loaded_as_not_found", "LLMOS-MGMT-010", "/v1/", not_loaded_as_not_found),
        ("overflow_refused_429", "LLMOS-INF-013", "/v1/", overflow_refused_429()),
        ("install_digest_reserialised", "LLMOS-PKG-003", "/llmos/", install_digest_reserialised),
        ("traversal_stored_anyway", "LLMOS-PKG-004", "/llmos/", traversal_stored_anyway),
        ("sizes_unchecked", "LLMOS-PKG-005", "/llmos/", sizes_unchecked),
        ("pickle_accepted", "LLMOS-PKG-006", "/llmos/", pickle_accepted),
        ("repeat_install_created", "LLMOS-PKG-007", "/llmos/", repeat_install_created),
        ("partial_blob_kept", "LLMOS-PKG-008", "/llmos/", partial_blob_kept),
        ("active_delete_allowed", "LLMOS-PKG-009", "/llmos/", active_delete_allowed),
    ]
