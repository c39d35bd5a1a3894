"""A test-only defect layer: ASGI middleware around the reference app that breaks one requirement at a time.

The active defect lives on a :class:`DefectSwitch` the test holds, so one server serves every run.
Each defect names the requirement it breaks; the proof-of-power test asserts the kit fails exactly it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmos_std.export import schema_files
from tests.conformance.faulty.lifecycle_defects import Around, Call, around_defects
from tests.conformance.faulty.data_defects import build_data_defects
from tests.conformance.faulty.security_defects import build_security_defects

Headers = list[tuple[bytes, bytes]]
RequestRewrite = Callable[[str, dict[str, str], bytes], tuple[dict[str, str], bytes]]
ResponseRewrite = Callable[[str, dict[str, Any] | None, int, Headers, bytes], tuple[int, Headers, bytes]]
INFERENCE_PATHS = ("/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/responses")


@dataclass(frozen=True)
class Defect:
    name: str
    requirement: str | None
    """The requirement it breaks; None for a pose (a whole kind of server, judged by its own test)."""
    request: RequestRewrite | None = None
    response: ResponseRewrite | None = None
    around: Around | None = None
    """Runs the buffered request through the app itself (see lifecycle_defects), for paths under ``prefix``."""
    prefix: str = "/"


@dataclass
class DefectSwitch:
    active: str | None = None
    resident: dict[str, str] = field(default_factory=dict)
    """Path -> a model that exists, for the defect that serves unknown models."""
    key: str = ""
    """The keyed server's API key, for the security defects that bypass or loosen it."""
    last_auth: str = ""
    data_dir: Path | None = None
    """The server's data folder (a defect signs with the server's own key found there)."""
    """The last Authorization header the layer saw (a defect echoes it)."""
    models_asked: list[str] = field(default_factory=list)
    pose_listing: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The app's own model list, kept by the plain-OpenAI pose to answer GET /v1/models/acme/<name>."""
    """Every ``model`` value the plain-OpenAI pose was sent, as sent."""


# ---------------------------------------------------------------- helpers


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _is_sse(headers: Headers) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/event-stream") for k, v in headers)


def _on_json(fn: Callable[[dict[str, Any]], None], *, errors: bool = False) -> ResponseRewrite:
    def rewrite(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if _is_sse(headers) or (status >= 400) != errors:
            return status, headers, body
        doc = _json(body)
        if isinstance(doc, dict):
            fn(doc)
            body = json.dumps(doc).encode()
        return status, headers, body

    return rewrite


def _on_events(fn: Callable[[list[str]], list[str]]) -> ResponseRewrite:
    def rewrite(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if not _is_sse(headers):
            return status, headers, body
        events = [e[len("data: "):] for e in body.decode().split("\n\n") if e.startswith("data: ")]
        return status, headers, "".join(f"data: {e}\n\n" for e in fn(events)).encode()

    return rewrite


def _on_chunks(fn: Callable[[dict[str, Any]], None]) -> ResponseRewrite:
    def each(events: list[str]) -> list[str]:
        out = []
        for e in events:
            doc = _json(e.encode()) if e != "[DONE]" else None
            if isinstance(doc, dict) and "error" not in doc:
                fn(doc)
                e = json.dumps(doc)
            out.append(e)
        return out

    return _on_events(each)


def _request_json(fn: Callable[[dict[str, Any]], None]) -> RequestRewrite:
    def rewrite(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        doc = _json(body)
        if path in INFERENCE_PATHS and isinstance(doc, dict):
            fn(doc)
            body = json.dumps(doc).encode()
        return headers, body

    return rewrite


def _drop_header(name: bytes) -> ResponseRewrite:
    def rewrite(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        return status, [(k, v) for k, v in headers if k.lower() != name], body

    return rewrite


async def _send_whole(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a buffered (possibly rewritten) response, its Content-Length made to match the body."""
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"] + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- the defects


def _error_then_stop(events: list[str]) -> list[str]:
    error = json.dumps({"error": {"message": "the engine failed", "type": "server_error", "param": None, "code": "engine_error"}})
    return [*events[:1], error]


def _usage_twice(events: list[str]) -> list[str]:
    out: list[str] = []
    for e in events:
        out.append(e)
        if '"usage": {' in e or '"usage":{' in e:
            out.append(e)
    return out


def _usage_dropped(events: list[str]) -> list[str]:
    return [e for e in events if not ('"usage": {' in e or '"usage":{' in e)]


def _detail(doc: dict[str, Any]) -> None:
    message = (doc.get("error") or {}).get("message", "error")
    doc.clear()
    doc["detail"] = message


def _trace(doc: dict[str, Any]) -> None:
    if isinstance(doc.get("error"), dict):
        doc["error"]["message"] += ' Traceback (most recent call last): File "/srv/llmos/app.py", line 12, in handle'


def _usage_wrong(doc: dict[str, Any]) -> None:
    if isinstance(doc.get("usage"), dict) and "choices" in doc:
        doc["usage"]["total_tokens"] += 1


def _length_as_stop(doc: dict[str, Any]) -> None:
    for choice in doc.get("choices") or []:
        if choice.get("finish_reason") == "length":
            choice["finish_reason"] = "stop"


def _shift_indices(doc: dict[str, Any]) -> None:
    for choice in doc.get("choices") or []:
        choice["index"] += 1


def _created_str(doc: dict[str, Any]) -> None:
    if "created" in doc:
        doc["created"] = str(doc["created"])


def _reuse_id(doc: dict[str, Any]) -> None:
    if "id" in doc and "choices" in doc:
        doc["id"] = "cmpl-reused"


def _reverse_embeddings(doc: dict[str, Any]) -> None:
    if doc.get("object") == "list" and doc.get("data") and doc["data"][0].get("object") == "embedding":
        doc["data"].reverse()


def _big_endian(doc: dict[str, Any]) -> None:
    for item in doc.get("data") or []:
        if isinstance(item, dict) and isinstance(item.get("embedding"), str):
            raw = base64.b64decode(item["embedding"])
            values = struct.unpack(f"<{len(raw) // 4}f", raw)
            item["embedding"] = base64.b64encode(struct.pack(f">{len(values)}f", *values)).decode()


def _not_found_as_400(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    doc = _json(body)
    if status == 404 and isinstance(doc, dict) and (doc.get("error") or {}).get("code") == "model_not_found":
        doc["error"]["type"] = "invalid_request_error"
        return 400, headers, json.dumps(doc).encode()
    return status, headers, body


def _blob_byte_flipped(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    """A download whose last byte is not the stored one (a bad disk, a buffer reused too early)."""
    if status == 200 and body and (b"content-type", b"application/octet-stream") in headers:  # the GET, not the PUT's JSON
        return status, headers, body[:-1] + bytes([body[-1] ^ 0x01])
    return status, headers, body


def _replica_without_versions(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    """Scale-out readiness whose ready replica holds none of the versions the model list calls ready."""
    doc = _json(body)
    if path == "/llmos/v1/health/ready" and isinstance(doc, dict):
        doc["replicas"] = [{"id": "replica-0", "state": "ready", "models": [], "detail": None},
                           {"id": "replica-1", "state": "restarting", "models": [], "detail": "replaced after a crash"}]
        body = json.dumps(doc).encode()
    return status, headers, body


def _known_fields(path: str) -> set[str]:
    name = {"/v1/completions": "CompletionRequest", "/v1/chat/completions": "ChatCompletionRequest", "/v1/embeddings": "EmbeddingRequest"}[path]
    return set(schema_files()[f"{name}.json"]["properties"])


def _drop_unknown(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    doc = _json(body)
    if path in INFERENCE_PATHS and isinstance(doc, dict):
        body = json.dumps({k: v for k, v in doc.items() if k in _known_fields(path)}).encode()
    return headers, body


def _force_json_type(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    if path in INFERENCE_PATHS:
        headers = {**headers, "content-type": "application/json"}
    return headers, body


def _empty_input_500(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    """A 500 on one class of valid input: an empty string as the prompt or as a message's content."""
    if req is None or path not in INFERENCE_PATHS:
        return status, headers, body
    prompt = req.get("prompt")
    contents = [m.get("content") for m in req.get("messages") or [] if isinstance(m, dict)]
    if prompt == "" or (isinstance(prompt, list) and "" in prompt) or "" in contents:
        error = {"error": {"message": "the model failed while generating", "type": "server_error", "param": None, "code": "engine_error"}}
        return 500, [(b"content-type", b"application/json")], json.dumps(error).encode()
    return status, headers, body


def build_defects(switch: DefectSwitch) -> dict[str, Defect]:
    def serve_unknown(doc: dict[str, Any]) -> None:
        model = doc.get("model")
        if isinstance(model, str) and model.startswith("llmos-conformance-"):
            doc["model"] = switch.resident.get("chat" if "messages" in doc else "embeddings" if "input" in doc else "text", model)

    from tests.conformance.faulty.tool_defects import build_tool_defects  # it imports the helpers above

    defects = [
        Defect("stream_without_done", "LLMOS-STRM-001", response=_on_events(lambda es: [e for e in es if e != "[DONE]"])),
        Defect("error_event_without_done", "LLMOS-STRM-005", response=_on_events(_error_then_stop)),
        Defect("detail_error_shape", "LLMOS-ERR-001", response=_on_json(_detail, errors=True)),
        Defect("unknown_model_served", "LLMOS-MOD-002", request=_request_json(serve_unknown)),
        Defect("unknown_model_400", "LLMOS-MOD-002", response=_not_found_as_400),
        Defect("stack_trace_in_message", "LLMOS-ERR-006", response=_on_json(_trace, errors=True)),
        Defect("usage_total_wrong", "LLMOS-INF-002", response=_on_json(_usage_wrong)),
        Defect("length_reported_as_stop", "LLMOS-INF-003", response=_on_json(_length_as_stop)),
        Defect("stop_ignored", "LLMOS-INF-004", request=_request_json(lambda d: d.pop("stop", None))),
        Defect("n_ignored", "LLMOS-INF-005", request=_request_json(lambda d: d.pop("n", None))),
        Defect("choice_index_from_1", "LLMOS-INF-005", response=_on_json(_shift_indices)),
        Defect("created_as_string", "LLMOS-INF-001", response=_on_json(_created_str)),
        Defect("version_header_missing", "LLMOS-DISC-003", response=_drop_header(b"llmos-version")),
        Defect("allow_header_missing", "LLMOS-ERR-007", response=_drop_header(b"allow")),
        Defect("usage_chunk_missing", "LLMOS-STRM-004", response=_on_events(_usage_dropped)),
        Defect("usage_chunk_duplicated", "LLMOS-STRM-004", response=_on_events(_usage_twice)),
        Defect("base64_big_endian", "LLMOS-EMB-002", response=_on_json(_big_endian)),
        Defect("embeddings_reversed", "LLMOS-EMB-001", response=_on_json(_reverse_embeddings)),
        Defect("unknown_field_ignored", "LLMOS-PARAM-001", request=_drop_unknown),
        Defect("digest_header_missing", "LLMOS-INF-007", response=_drop_header(b"llmos-model-digest")),
        Defect("blob_byte_flipped", "LLMOS-PKG-013", response=_blob_byte_flipped, prefix="/llmos/v1/blobs/"),
        Defect("replica_without_versions", "LLMOS-HLTH-003", response=_replica_without_versions, prefix="/llmos/v1/health/"),
        Defect("ids_reused", "LLMOS-INF-008", response=_on_json(_reuse_id)),
        Defect("chunk_created_as_string", "LLMOS-STRM-002", response=_on_chunks(_created_str)),
        Defect("any_content_type_accepted", "LLMOS-ERR-005", request=_force_json_type),
        Defect("empty_input_500", "LLMOS-ERR-008", response=_empty_input_500),
        Defect("malformed_json_500", "LLMOS-ERR-003"),  # handled in the layer: answered before the app
        Defect("disconnect_ignored", "LLMOS-STRM-006", prefix="/v1/"),  # handled in the layer: the app never hears the client leave
        *(Defect(name, requirement, around=around, prefix=prefix) for name, requirement, prefix, around in around_defects()),
        *build_data_defects(),
        *build_tool_defects(),
    ]
    return {d.name: d for d in defects}


def _deaf(receive: Receive) -> Receive:
    """The request body, then silence: the app never learns that the client went away."""
    done = False

    async def deaf() -> Message:
        nonlocal done
        if not done:
            message = await receive()
            done = not message.get("more_body")
            return message
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return deaf


def _mute(send: Send) -> Send:
    """Forwards to the client while it listens and swallows the failure once it has gone."""
    gone = False

    async def mute(message: Message) -> None:
        nonlocal gone
        if gone:
            return
        try:
            await send(message)
        except OSError:
            gone = True

    return mute


# ---------------------------------------------------------------- poses: whole kinds of server

POSE_ORG = "acme"
"""The org prefix the plain-OpenAI pose lists its models under (``acme/tiny-llama``)."""


def _plain_openai_request(switch: DefectSwitch) -> RequestRewrite:
    def rewrite(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        doc = _json(body)
        if path in INFERENCE_PATHS and isinstance(doc, dict) and isinstance(doc.get("model"), str):
            switch.models_asked.append(doc["model"])
            org, slash, name = doc["model"].partition("/")
            # Only ``acme/<name>`` is served; anything else is unknown to this server.
            doc["model"] = name if (slash and org == POSE_ORG) else f"not-served-{doc['model'].replace('/', '-')}"
            body = json.dumps(doc).encode()
        return headers, body

    return rewrite


def _plain_model(m: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{POSE_ORG}/{m['id']}", "object": "model", "created": m["created"], "owned_by": m["owned_by"]}


def _plain_openai_response(switch: DefectSwitch) -> ResponseRewrite:
    def rewrite(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        return _plain_openai(switch, path, status, headers, body)

    return rewrite


def _plain_openai(switch: DefectSwitch, path: str, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    headers = [(k, v) for k, v in headers if k.lower() not in (b"llmos-version", b"llmos-model-digest")]
    if path == "/.well-known/llmos" or path.startswith("/llmos/"):
        error = {"error": {"message": f"no route {path}", "type": "not_found_error", "param": None, "code": "not_found"}}
        return 404, [(b"content-type", b"application/json")], json.dumps(error).encode()
    doc = _json(body)
    if path == "/v1/models" and isinstance(doc, dict) and isinstance(doc.get("data"), list):
        switch.pose_listing = {m['id']: m for m in doc['data']}
        doc["data"] = [_plain_model(m) for m in doc["data"]]
        return status, headers, json.dumps(doc).encode()
    if path.startswith(f"/v1/models/{POSE_ORG}/") and isinstance(doc, dict):
        # The app saw "acme/<name>", which it does not serve: answer as a plain server does for its own ids.
        name = path.removeprefix(f"/v1/models/{POSE_ORG}/")
        if name in switch.pose_listing:
            return 200, [(b"content-type", b"application/json")], json.dumps(_plain_model(switch.pose_listing[name])).encode()
    if path in INFERENCE_PATHS and isinstance(doc, dict) and "model" in doc:
        doc["model"] = f"{POSE_ORG}/{doc['model']}"
        doc.pop("system_fingerprint", None)
        return status, headers, json.dumps(doc).encode()
    if _is_sse(headers):
        events = [e[len("data: "):] for e in body.decode().split("\n\n") if e.startswith("data: ")]
        out = []
        for e in events:
            chunk = _json(e.encode()) if e != "[DONE]" else None
            if isinstance(chunk, dict) and "model" in chunk:
                chunk["model"] = f"{POSE_ORG}/{chunk['model']}"
                chunk.pop("system_fingerprint", None)
                e = json.dumps(chunk)
            out.append(e)
        body = "".join(f"data: {e}\n\n" for e in out).encode()
    return status, headers, body


def _overclaim(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    doc = _json(body)
    if path == "/.well-known/llmos" and isinstance(doc, dict):
        doc["profiles"] = sorted({*doc["profiles"], "tasks", "data-management", "security-baseline", "security-standard", "security-strict"})
        body = json.dumps(doc).encode()
    return status, headers, body


def build_poses(switch: DefectSwitch) -> dict[str, Defect]:
    """Whole kinds of server: a plain OpenAI-compatible one (``org/name`` ids, no LLMOS additions),
    and one whose discovery claims profiles this kit version cannot check."""
    poses = [
        Defect("plain_openai", None, request=_plain_openai_request(switch), response=_plain_openai_response(switch)),
        Defect("overclaiming_discovery", None, response=_overclaim),
    ]
    return {p.name: p for p in poses}


class DefectLayer:
    """Wraps the app; with no active defect it passes every message through untouched."""

    def __init__(self, app: ASGIApp, switch: DefectSwitch) -> None:
        self.app = app
        self.switch = switch
        self.defects = {**build_defects(switch), **build_poses(switch), **{d.name: d for d in build_security_defects(switch)}}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        defect = self.defects.get(self.switch.active or "")
        if scope["type"] != "http" or defect is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not path.startswith(defect.prefix):
            await self.app(scope, receive, send)
            return
        if defect.name == "disconnect_ignored":
            await self.app(scope, _deaf(receive), _mute(send))
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if defect.name == "malformed_json_500" and path in INFERENCE_PATHS and scope["method"] == "POST" and _json(body) is None:
            error = json.dumps({"error": {"message": "internal error", "type": "server_error", "param": None, "code": "internal_error"}}).encode()
            await _send_whole(send, 500, [(b"content-type", b"application/json")], error)
            return
        if defect.around is not None:
            await _send_whole(send, *await defect.around(Call(self.app, scope, body)))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if defect.request is not None:
            headers, body = defect.request(path, headers, body)
        headers["content-length"] = str(len(body))
        scope = {**scope, "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        request_doc = _json(body)
        start: dict[str, Any] = {}
        out = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] == "http.response.body":
                out.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                status, rheaders, rbody = start["status"], list(start.get("headers", [])), bytes(out)
                if defect.response is not None:
                    status, rheaders, rbody = defect.response(path, request_doc if isinstance(request_doc, dict) else None, status, rheaders, rbody)
                await _send_whole(send, status, rheaders, rbody)
                return
            await send(message)

        await self.app(scope, replay, capture)
