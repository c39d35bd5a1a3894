"""Security defects: each breaks one security-baseline (or DISC-005) requirement on a keyed reference server.

They are request and response rewrites in the same defect layer; the switch carries the server's key
and the last ``Authorization`` header the layer saw, so that a defect can bypass, loosen or echo it.
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tests.conformance.faulty.defects import Defect, DefectSwitch, Headers, RequestRewrite, ResponseRewrite


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _urls(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["url"]] if isinstance(value.get("url"), str) else []
        return found + [u for v in value.values() for u in _urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in _urls(v)]
    return []


def build_security_defects(switch: DefectSwitch) -> list[Defect]:
    from tests.conformance.faulty.defects import Defect

    def remember(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        switch.last_auth = headers.get("authorization", "")
        return headers, body

    def bypass_one_route(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        if path == "/llmos/v1/models" and "authorization" not in headers:
            headers = {**headers, "authorization": f"Bearer {switch.key}"}
        return headers, body

    def scheme_case_sensitive(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        auth = headers.get("authorization", "")
        if auth and not auth.startswith("Bearer "):
            headers = {k: v for k, v in headers.items() if k != "authorization"}
        return headers, body

    def key_case_insensitive(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if token.lower() == switch.key.lower():
            headers = {**headers, "authorization": f"{scheme} {switch.key}"}
        return headers, body

    def echo_key(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        doc = _json(body)
        if status == 401 and isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            doc["error"]["message"] += f" (got {switch.last_auth.partition(' ')[2]!r})"
            body = json.dumps(doc).encode()
        return status, headers, body

    def fetch_urls(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        for url in _urls(_json(body)):
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.hostname:
                try:
                    socket.create_connection((parts.hostname, parts.port or 80), timeout=1).close()
                except OSError:
                    pass
        return headers, body

    def drop_challenge(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        return status, [(k, v) for k, v in headers if k.lower() != b"www-authenticate"], body

    def any_host(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return {**headers, "host": "127.0.0.1"}, body

    def cors_wildcard(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        return status, [*headers, (b"access-control-allow-origin", b"*"), (b"access-control-allow-credentials", b"true")], body

    def open_metrics(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if path == "/metrics" and status == 404:
            return 200, [(b"content-type", b"text/plain")], b"llmos_requests_total 42\n"
        return status, headers, body

    def absurd_500(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if req is not None and isinstance(req.get("max_tokens"), int) and req["max_tokens"] >= 2**63:
            error = {"error": {"message": "internal error", "type": "server_error", "param": None, "code": "internal_error"}}
            return 500, [(b"content-type", b"application/json")], json.dumps(error).encode()
        return status, headers, body

    def openapi_without_security(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        doc = _json(body)
        if path == "/llmos/v1/openapi.json" and isinstance(doc, dict):
            for item in doc.get("paths", {}).values():
                for operation in item.values():
                    operation["security"] = []
            body = json.dumps(doc).encode()
        return status, headers, body

    def any_key_is_admin(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        if headers.get("authorization", "").lower().startswith("bearer llmos-"):
            headers = {**headers, "authorization": f"Bearer {switch.key}"}
        return headers, body

    def drop(*names: bytes, path_prefix: str = "/") -> ResponseRewrite:
        def rewrite(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
            if path.startswith(path_prefix):
                headers = [(k, v) for k, v in headers if k.lower() not in names]
            return status, headers, body

        return rewrite

    def denied_not_audited(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        doc = _json(body)
        if path == "/llmos/v1/audit/events" and isinstance(doc, dict):
            doc["data"] = [e for e in doc.get("data", []) if e.get("outcome") != "failure"]
            body = json.dumps(doc).encode()
        return status, headers, body

    def request_id_replaced(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        return status, [(k, v if k.lower() != b"x-request-id" else b"srv-" + v[::-1][:20]) for k, v in headers], body

    def sign_the_unsigned(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        """The server signs whatever arrives unsigned with its own key: signatures stop meaning anything."""
        from llmos_std.signing import sign_package

        doc = _json(body)
        if path == "/llmos/v1/packages" and isinstance(doc, dict) and not doc.get("signatures") and switch.data_dir is not None:
            blobs = switch.data_dir / "registry" / "blobs" / "sha256"
            files = {f["path"]: blobs / f["digest"].removeprefix("sha256:") for f in doc.get("files", [])}
            if all(p.exists() for p in files.values()):
                doc["signatures"] = [sign_package(doc, files, switch.data_dir / "signing" / "local-signing-key.pem")]
                body = json.dumps(doc).encode()
        return headers, body

    def chain_edited(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        doc = _json(body)
        if path == "/llmos/v1/audit/events" and isinstance(doc, dict) and len(doc.get("data", [])) > 1:
            doc["data"][1]["status"] = 200  # an event edited after the fact, its hash left as it was
            body = json.dumps(doc).encode()
        return status, headers, body

    def others_key_403(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        doc = _json(body)
        if path.startswith("/llmos/v1/keys/") and status == 404 and isinstance(doc, dict):
            error = {"error": {"message": "that key belongs to another principal", "type": "permission_error", "param": None, "code": "insufficient_scope"}}
            return 403, [(b"content-type", b"application/json")], json.dumps(error).encode()
        return status, headers, body

    def mismatch_accepted(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if path.startswith("/llmos/v1/blobs/") and status == 400:
            digest = path.rsplit("/", 1)[1]
            return 201, [(b"content-type", b"application/json")], json.dumps({"digest": digest, "size": 0}).encode()
        return status, headers, body

    echo: RequestRewrite = remember
    rows: list[tuple[str, str, RequestRewrite | None, ResponseRewrite | None]] = [
        ("auth_bypass_one_route", "LLMOS-SEC-001", bypass_one_route, None),
        ("www_authenticate_missing", "LLMOS-SEC-001", None, drop_challenge),
        ("lowercase_scheme_refused", "LLMOS-SEC-002", scheme_case_sensitive, None),
        ("key_compared_case_insensitively", "LLMOS-SEC-002", key_case_insensitive, None),
        ("key_echoed_in_401", "LLMOS-SEC-003", echo, echo_key),
        ("host_not_checked", "LLMOS-SEC-005", any_host, None),
        ("image_url_fetched", "LLMOS-SEC-006", fetch_urls, None),
        ("cors_wildcard_with_credentials", "LLMOS-SEC-007", None, cors_wildcard),
        ("metrics_open", "LLMOS-SEC-008", None, open_metrics),
        ("absurd_max_tokens_500", "LLMOS-SEC-009", None, absurd_500),
        ("openapi_security_dropped", "LLMOS-DISC-005", None, openapi_without_security),
        ("scopes_ignored", "LLMOS-SEC-010", any_key_is_admin, None),
        ("secret_response_cacheable", "LLMOS-SEC-011", None, drop(b"cache-control", path_prefix="/llmos/v1/keys")),
        ("retry_after_missing", "LLMOS-SEC-012", None, drop(b"retry-after")),
        ("denied_calls_not_audited", "LLMOS-SEC-013", None, denied_not_audited),
        ("request_id_not_echoed", "LLMOS-SEC-014", None, request_id_replaced),
        ("ratelimit_headers_missing", "LLMOS-SEC-016", None, drop(b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset")),
        ("blob_digest_mismatch_acknowledged", "LLMOS-SEC-017", None, mismatch_accepted),
        ("unsigned_packages_signed_by_the_server", "LLMOS-SEC-020", sign_the_unsigned, None),
        ("isolation_answered_403", "LLMOS-SEC-022", None, others_key_403),
        ("audit_event_edited", "LLMOS-SEC-024", None, chain_edited),
    ]
    return [Defect(name, requirement, request=request, response=response) for name, requirement, request, response in rows]
