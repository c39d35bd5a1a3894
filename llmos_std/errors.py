"""The error envelope and the closed table of machine error codes, each bound to one status.

Servers raise :class:`LLMOSError` with a code from :data:`ERROR_CODES`; one handler turns it into
the OpenAI-compatible envelope. Clients rebuild the same exception from the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from llmos_std.wire import OpenWireModel

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "conflict_error",
    "rate_limit_error",
    "server_error",
]
"""The closed vocabulary of ``error.type`` (OpenAI's names, plus ``conflict_error``)."""

ERROR_TYPES: tuple[str, ...] = get_args(ErrorType)


@dataclass(frozen=True)
class ErrorCodeSpec:
    """One machine code: the only status and type it may be sent with, and where the spec defines it."""

    code: str
    status: int
    type: ErrorType
    section: str
    description: str


def _c(code: str, status: int, type_: ErrorType, section: str, description: str) -> ErrorCodeSpec:
    return ErrorCodeSpec(code, status, type_, section, description)


_ALL: tuple[ErrorCodeSpec, ...] = (
    # Request shape and parameters (core, inference).
    _c("invalid_json", 400, "invalid_request_error", "errors", "The body is not a JSON document."),
    _c("invalid_request", 400, "invalid_request_error", "errors", "The body is JSON but not an object of the expected shape."),
    _c("missing_required_parameter", 400, "invalid_request_error", "errors", "A required field is absent; `param` names it."),
    _c("invalid_value", 400, "invalid_request_error", "errors", "A field has the wrong type or is out of range; `param` names it."),
    _c("unsupported_parameter", 400, "invalid_request_error", "parameters", "A field is unknown, or capability-gated and the model lacks the capability; `param` names it."),
    _c("limit_exceeded", 400, "invalid_request_error", "discovery", "A value exceeds a limit the server declares in discovery; `param` names it."),
    _c("schema_unsupported", 400, "invalid_request_error", "tools", "A valid JSON Schema (in `response_format` or a tool's `parameters`) uses what the server cannot enforce; `param` names it."),
    _c("context_length_exceeded", 400, "invalid_request_error", "inference", "Prompt tokens plus the requested completion exceed the model's context length."),
    _c("invalid_model_id", 400, "invalid_request_error", "models", "The `model` field does not follow the model-id syntax."),
    _c("unsupported_media_type", 415, "invalid_request_error", "errors", "The request's Content-Type is not one the operation accepts."),
    _c("payload_too_large", 413, "invalid_request_error", "security", "The body exceeds `max_body_bytes`."),
    _c("method_not_allowed", 405, "invalid_request_error", "errors", "The path exists but not with this method."),
    _c("not_found", 404, "not_found_error", "errors", "No operation is served at this path."),
    _c("model_not_found", 404, "not_found_error", "models", "No installed model or version matches the requested model id."),
    _c("model_not_loaded", 409, "conflict_error", "management", "The model version exists but is not loaded; load it first."),
    _c("capability_not_supported", 400, "invalid_request_error", "models", "The model exists but lacks the capability this operation needs."),
    # Authentication and authorisation (security profiles).
    _c("missing_api_key", 401, "authentication_error", "security", "No bearer credential was sent."),
    _c("invalid_api_key", 401, "authentication_error", "security", "The credential is unknown, revoked or expired."),
    _c("insufficient_scope", 403, "permission_error", "security", "The key lacks the scope the operation requires."),
    _c("host_not_allowed", 403, "permission_error", "security", "The Host header is not in the server's allowlist."),
    _c("rate_limited", 429, "rate_limit_error", "security", "The key exceeded its rate limit; see Retry-After."),
    # Lifecycle and registry (model-management, model-packages).
    _c("version_not_found", 404, "not_found_error", "management", "The model has no such version."),
    _c("state_conflict", 409, "conflict_error", "management", "The operation is not allowed in the version's current state, or another operation on it is in progress."),
    _c("already_exists", 409, "conflict_error", "packages", "A resource with this identity exists and differs."),
    _c("no_previous_version", 409, "conflict_error", "management", "Rollback was requested but the activation history has no earlier version."),
    _c("package_not_found", 404, "not_found_error", "packages", "No installed package has this digest."),
    _c("blob_unknown", 404, "not_found_error", "packages", "No blob with this digest is stored."),
    _c("digest_invalid", 400, "invalid_request_error", "packages", "Uploaded content does not hash to the digest it was sent under, or a digest is malformed."),
    _c("size_invalid", 400, "invalid_request_error", "packages", "A file's length differs from the size its manifest declares (at install, or in local verification)."),
    _c("manifest_invalid", 400, "invalid_request_error", "packages", "The manifest does not validate against the manifest schema."),
    _c("manifest_blob_unknown", 400, "invalid_request_error", "packages", "The manifest references a blob that is not uploaded."),
    _c("path_invalid", 400, "invalid_request_error", "packages", "A file path is absolute, escapes the package, or is not normalised POSIX."),
    _c("weights_malformed", 400, "invalid_request_error", "packages", "A weights file does not parse in its declared format."),
    _c("format_forbidden", 400, "invalid_request_error", "packages", "The package uses a weights format or feature the server refuses (pickle, code, auto_map)."),
    _c("architecture_unsupported", 400, "invalid_request_error", "packages", "The server cannot run the package's architecture."),
    _c("signature_required", 403, "permission_error", "security", "The server only installs signed packages and this one is unsigned."),
    _c("untrusted_signer", 403, "permission_error", "security", "The package is signed by a key the server does not trust."),
    _c("signature_mismatch", 400, "invalid_request_error", "security", "A signature does not verify against the manifest and file digests."),
    # Tasks and data.
    _c("task_not_found", 404, "not_found_error", "tasks", "The task name is not one the server offers."),
    _c("dataset_not_found", 404, "not_found_error", "data", "No dataset with this id is visible to the caller."),
    _c("cursor_invalid", 400, "invalid_request_error", "data", "The pagination cursor is malformed or expired."),
    _c("pipeline_invalid", 400, "invalid_request_error", "data", "A preprocessing pipeline step is unknown or misconfigured."),
    _c("record_invalid", 400, "invalid_request_error", "data", "A record of an append is not a JSON object or fails the dataset's schema; `param` is `records.<i>`, and nothing was stored."),
    _c("dataset_version_not_found", 404, "not_found_error", "data", "The dataset has no such version."),
    _c("operation_not_found", 404, "not_found_error", "data", "No operation with this id is visible to the caller."),
    _c("pipeline_failed", 400, "invalid_request_error", "data", "A derive stopped on a record (a template field it lacks, a model failure); carried by the failed operation, which left nothing behind."),
    _c("key_not_found", 404, "not_found_error", "security", "No API key with this id belongs to the caller."),
    _c("signer_not_found", 404, "not_found_error", "security", "No trusted signer with this id."),
    # Server side.
    _c("internal_error", 500, "server_error", "errors", "An unexpected failure; the message carries a request id, never a trace."),
    _c("engine_error", 500, "server_error", "inference", "The model failed while producing output."),
    _c("not_ready", 503, "server_error", "discovery", "The server or the model is not ready to serve."),
)

ERROR_CODES: dict[str, ErrorCodeSpec] = {spec.code: spec for spec in _ALL}


class ErrorDetail(OpenWireModel):
    """The body of an error: OpenAI's shape, with ``code`` one of the standard's machine codes."""

    message: str
    """Human-readable explanation; never a stack trace, path or exception class name."""
    type: ErrorType
    """The error family, from a closed vocabulary."""
    param: str | None = None
    """The request field at fault, as a dotted path (``messages.0.role``), or null."""
    code: str | None = None
    """A machine code from the standard's error-code table, or null."""


class ErrorEnvelope(OpenWireModel):
    """Every non-2xx response body, and the ``data:`` event a stream fails with."""

    error: ErrorDetail


class LLMOSError(Exception):
    """An error of the standard: a code from the table, a message and optionally the field at fault."""

    def __init__(self, code: str, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        spec = ERROR_CODES.get(code)
        if spec is None:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.spec = spec
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return self.spec.status

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(error=ErrorDetail(message=self.message, type=self.spec.type, param=self.param, code=self.code))

    @classmethod
    def from_envelope(cls, envelope: ErrorEnvelope) -> LLMOSError:
        """Rebuild the error a server sent; an unknown code becomes ``internal_error`` keeping its message."""
        detail = envelope.error
        code = detail.code if detail.code is not None and detail.code in ERROR_CODES else "internal_error"
        return cls(code, detail.message, param=detail.param)
