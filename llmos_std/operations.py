"""The operation table: every operation of the standard, declared once.

The OpenAPI document, the reference server's routing and the kit's coverage all read this table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from llmos_std.data import (
    DATASET_ID_PATTERN,
    DATASET_REF_PATTERN,
    AppendRecordsRequest,
    AppendRecordsResponse,
    DataOperation,
    Dataset,
    DatasetCreateRequest,
    DatasetList,
    DatasetVersionList,
    DeriveDatasetRequest,
    QueryResponse,
)
from llmos_std.discovery import DiscoveryDocument, Health
from llmos_std.inference import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)
from llmos_std.management import DeletedObject, ManagedModel, ManagedModelList, ModelVersion
from llmos_std.manifest import PackageManifest
from llmos_std.models import MODEL_NAME_PATTERN, ModelList, ModelObject
from llmos_std.packages import BlobInfo
from llmos_std.parameters import Capability
from llmos_std.profiles import ProfileName
from llmos_std.security import (
    ApiKeyList,
    ApiKeyWithSecret,
    AuditEventList,
    AuditVerification,
    KeyCreateRequest,
    Principal,
    SignerCreateRequest,
    TrustedSigner,
    TrustedSignerList,
)
from llmos_std.query import QueryRequest
from llmos_std.responses import ResponseCreateRequest, ResponseObject, ResponseStreamEvent
from llmos_std.tasks import TaskChunk, TaskList, TaskRequest, TaskResponse

Method = Literal["GET", "HEAD", "POST", "PUT", "DELETE"]
BodyKind = Literal["none", "json", "bytes", "jsonl"]

LLMOS_BASE = "/llmos/v1"
VERSION_HEADER = "LLMOS-Version"
"""On every response: the standard version the server implements."""
REQUEST_ID_HEADER = "X-Request-Id"
"""On every response: the request's id (the client's own when well-formed)."""
MODEL_DIGEST_HEADER = "LLMOS-Model-Digest"
"""On every inference response: the package digest of the model that served it."""

PATH_PARAMS: dict[str, str] = {
    "model": MODEL_NAME_PATTERN,
    "name": r"[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?",
    "version": r"[0-9A-Za-z.+-]{1,128}",
    "digest": r"sha256:[0-9a-f]{64}",
    "task": r"[a-z_]{1,64}",
    "dataset_id": DATASET_ID_PATTERN,
    "dataset_ref": DATASET_REF_PATTERN,
    "operation_id": r"op_[A-Za-z0-9]{1,61}",
    "key_id": r"[A-Za-z0-9_-]{1,64}",
    "signer_id": r"[A-Za-z0-9_-]{1,64}",
}
"""Patterns for path parameters (documented in OpenAPI; servers answer 404 when a value misses)."""


@dataclass(frozen=True)
class Operation:
    id: str
    method: Method
    path: str
    summary: str
    profile: ProfileName
    scope: str | None
    """The scope a key needs; None for operations open without authentication."""
    requirements: tuple[str, ...]
    request: type[BaseModel] | None = None
    request_body: BodyKind = "none"
    response: type[BaseModel] | None = None
    response_body: BodyKind = "json"
    status: int = 200
    stream_chunk: type[BaseModel] | None = None
    """When set, ``stream: true`` turns the response into server-sent events of this model."""
    errors: tuple[str, ...] = ()
    """Operation-specific error codes; authentication and generic errors are added by :func:`error_codes`."""
    mutating: bool = False
    names_serving_model: bool = False
    """Whether responses carry the ``LLMOS-Model-Digest`` header of the package that served them."""
    extra_responses: tuple[tuple[int, type[BaseModel], str], ...] = ()
    """Non-envelope responses besides the success one (status, body model, description)."""
    body_error_code: str | None = None
    """When set, the body is validated by the operation itself and refused with this code and finer ones."""
    capability: Capability | None = None
    """The model capability the operation needs (the ``model`` it names must claim it)."""
    request_jsonl: bool = False
    """The body may also be JSON Lines (``application/jsonl``), one element of the request's list per line."""
    paged: bool = False
    """A list read a page at a time: query parameters ``limit`` (1 to 1000, default 100) and ``cursor`` (the last page's ``next_cursor``)."""

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))


_MODEL_ERRORS = ("model_not_found", "invalid_model_id", "model_not_loaded", "capability_not_supported")
_GEN_ERRORS = (*_MODEL_ERRORS, "unsupported_parameter", "limit_exceeded", "context_length_exceeded", "engine_error", "not_ready")
_LIFECYCLE_ERRORS = ("model_not_found", "version_not_found", "state_conflict")
_INSTALL_ERRORS = (
    "manifest_invalid", "manifest_blob_unknown", "path_invalid", "digest_invalid", "size_invalid", "weights_malformed",
    "format_forbidden", "architecture_unsupported", "already_exists", "signature_required",
    "untrusted_signer", "signature_mismatch",
)
_GEN_REQUIREMENTS = (
    "LLMOS-INF-001", "LLMOS-INF-002", "LLMOS-INF-003", "LLMOS-INF-004", "LLMOS-INF-005", "LLMOS-INF-006",
    "LLMOS-INF-007", "LLMOS-INF-008", "LLMOS-INF-010", "LLMOS-INF-012", "LLMOS-INF-013", "LLMOS-STRM-001", "LLMOS-STRM-002",
    "LLMOS-STRM-003", "LLMOS-STRM-004", "LLMOS-STRM-005", "LLMOS-PARAM-001", "LLMOS-PARAM-002", "LLMOS-PARAM-003",
)
_TOOL_REQUIREMENTS = tuple(f"LLMOS-TOOL-00{i}" for i in range(1, 6)) + tuple(f"LLMOS-SO-00{i}" for i in range(1, 5))
M = f"{LLMOS_BASE}/models/{{name}}"
V = f"{M}/versions/{{version}}"
D = f"{LLMOS_BASE}/datasets/{{dataset_id}}"
DR = f"{LLMOS_BASE}/datasets/{{dataset_ref}}"

OPERATIONS: tuple[Operation, ...] = (
    # core
    Operation("get_discovery", "GET", "/.well-known/llmos", "The discovery document.", "core", None, ("LLMOS-DISC-001", "LLMOS-DISC-002"), response=DiscoveryDocument),
    Operation("get_health_live", "GET", f"{LLMOS_BASE}/health/live", "Liveness: the process answers.", "core", None, ("LLMOS-HLTH-001",), response=Health, extra_responses=((503, Health, "Not live."),)),
    Operation("get_health_ready", "GET", f"{LLMOS_BASE}/health/ready", "Readiness: the server can serve requests.", "core", None, ("LLMOS-HLTH-001", "LLMOS-HLTH-002"), response=Health, extra_responses=((503, Health, "Not ready: starting, or a dependency is down."),)),
    Operation("get_openapi", "GET", f"{LLMOS_BASE}/openapi.json", "This server's effective OpenAPI document (security as configured).", "core", "models:read", ("LLMOS-DISC-005",)),
    Operation("retrieve_model", "GET", "/v1/models/{model}", "One servable model by id (OpenAI-compatible; the id may contain `/`).", "core", "models:read", ("LLMOS-MOD-005",), response=ModelObject, errors=("model_not_found",)),
    Operation("list_models", "GET", "/v1/models", "Servable models with LLMOS fields.", "core", "models:read", ("LLMOS-MOD-001",), response=ModelList),
    # inference
    Operation("create_completion", "POST", "/v1/completions", "Text completion (OpenAI-compatible).", "inference", "inference", (*_GEN_REQUIREMENTS, "LLMOS-LOGP-002"), request=CompletionRequest, request_body="json", response=CompletionResponse, stream_chunk=CompletionChunk, errors=_GEN_ERRORS, names_serving_model=True, capability="text-generation"),
    Operation("create_chat_completion", "POST", "/v1/chat/completions", "Chat completion (OpenAI-compatible).", "inference", "inference", (*_GEN_REQUIREMENTS, "LLMOS-INF-009", *_TOOL_REQUIREMENTS, "LLMOS-LOGP-001"), request=ChatCompletionRequest, request_body="json", response=ChatCompletionResponse, stream_chunk=ChatCompletionChunk, errors=(*_GEN_ERRORS, "schema_unsupported"), names_serving_model=True, capability="chat"),
    # embeddings
    Operation("create_embedding", "POST", "/v1/embeddings", "Embeddings (OpenAI-compatible).", "embeddings", "inference", ("LLMOS-EMB-001", "LLMOS-EMB-002", "LLMOS-EMB-003", "LLMOS-EMB-004", "LLMOS-EMB-006", "LLMOS-INF-013", "LLMOS-PARAM-001", "LLMOS-PARAM-002", "LLMOS-PARAM-003"), request=EmbeddingRequest, request_body="json", response=EmbeddingResponse, errors=(*_MODEL_ERRORS, "unsupported_parameter", "limit_exceeded", "context_length_exceeded", "engine_error", "not_ready"), names_serving_model=True, capability="embeddings"),
    # responses
    Operation("create_response", "POST", "/v1/responses", "Create a model response (Open Responses, stateless).", "responses", "inference", ("LLMOS-RESP-001", "LLMOS-RESP-002", "LLMOS-RESP-003", "LLMOS-RESP-004", "LLMOS-RESP-005", "LLMOS-INF-013"), request=ResponseCreateRequest, request_body="json", response=ResponseObject, stream_chunk=ResponseStreamEvent, errors=(*_GEN_ERRORS, "schema_unsupported"), names_serving_model=True, capability="chat"),
    # tasks
    Operation("list_tasks", "GET", f"{LLMOS_BASE}/tasks", "Offered tasks and the models that run them.", "tasks", "tasks", ("LLMOS-TASK-004",), response=TaskList),
    Operation("run_task", "POST", f"{LLMOS_BASE}/tasks/{{task}}", "Run a standard task over one input or a batch.", "tasks", "tasks", ("LLMOS-TASK-001", "LLMOS-TASK-002", "LLMOS-TASK-003", "LLMOS-TASK-005", "LLMOS-TASK-006", "LLMOS-TASK-007", "LLMOS-TASK-008", "LLMOS-TASK-009"), request=TaskRequest, request_body="json", response=TaskResponse, stream_chunk=TaskChunk, names_serving_model=True, errors=("task_not_found", *_MODEL_ERRORS, "unsupported_parameter", "limit_exceeded", "context_length_exceeded", "engine_error"), capability="tasks"),
    # model-management
    Operation("list_managed_models", "GET", f"{LLMOS_BASE}/models", "Installed models with versions and history.", "model-management", "models:read", ("LLMOS-MGMT-001",), response=ManagedModelList),
    Operation("get_managed_model", "GET", M, "One model with versions and history.", "model-management", "models:read", ("LLMOS-MGMT-001",), response=ManagedModel, errors=("model_not_found",)),
    Operation("get_model_version", "GET", V, "One version (poll it after a lifecycle action).", "model-management", "models:read", ("LLMOS-MGMT-002", "LLMOS-MGMT-003"), response=ModelVersion, errors=("model_not_found", "version_not_found")),
    Operation("load_model_version", "POST", f"{V}/load", "Load a version into memory.", "model-management", "models:manage", ("LLMOS-MGMT-002", "LLMOS-MGMT-004", "LLMOS-MGMT-007"), response=ModelVersion, status=202, errors=_LIFECYCLE_ERRORS, mutating=True),
    Operation("unload_model_version", "POST", f"{V}/unload", "Unload a version, draining in-flight requests.", "model-management", "models:manage", ("LLMOS-MGMT-002", "LLMOS-MGMT-008"), response=ModelVersion, status=202, errors=_LIFECYCLE_ERRORS, mutating=True),
    Operation("activate_model_version", "POST", f"{V}/activate", "Make a version the one that serves the bare name (loading it if needed).", "model-management", "models:manage", ("LLMOS-MGMT-002", "LLMOS-MGMT-005"), response=ModelVersion, status=202, errors=_LIFECYCLE_ERRORS, mutating=True),
    Operation("rollback_model", "POST", f"{M}/rollback", "Re-activate the previously active version.", "model-management", "models:manage", ("LLMOS-MGMT-006",), response=ModelVersion, status=202, errors=("model_not_found", "no_previous_version", "state_conflict"), mutating=True),
    # model-packages
    Operation("head_blob", "HEAD", f"{LLMOS_BASE}/blobs/{{digest}}", "Whether a blob is stored.", "model-packages", "packages:write", ("LLMOS-PKG-002",), response=None, response_body="none", errors=("blob_unknown", "digest_invalid")),
    Operation("put_blob", "PUT", f"{LLMOS_BASE}/blobs/{{digest}}", "Upload a blob under its digest (verified while streaming).", "model-packages", "packages:write", ("LLMOS-PKG-001", "LLMOS-PKG-002", "LLMOS-PKG-008"), request_body="bytes", response=BlobInfo, status=201, errors=("digest_invalid",), mutating=True,
              extra_responses=((200, BlobInfo, "Already stored: the same bytes under the same digest (idempotent)."),)),
    # After head_blob: routers that answer HEAD on a GET route too (Starlette's) take the first route that matches.
    Operation("get_blob", "GET", f"{LLMOS_BASE}/blobs/{{digest}}", "Download a stored blob: its exact bytes.", "model-packages", "packages:write", ("LLMOS-PKG-013",), response_body="bytes", errors=("blob_unknown", "digest_invalid")),
    Operation("install_package", "POST", f"{LLMOS_BASE}/packages", "Install a package from its manifest once every blob is stored.", "model-packages", "packages:write", ("LLMOS-PKG-003", "LLMOS-PKG-004", "LLMOS-PKG-005", "LLMOS-PKG-006", "LLMOS-PKG-007", "LLMOS-PKG-008", "LLMOS-PKG-011", "LLMOS-PKG-012"), request=PackageManifest, request_body="json", response=ModelVersion, status=201, errors=_INSTALL_ERRORS, mutating=True, body_error_code="manifest_invalid",
              extra_responses=((200, ModelVersion, "Already installed: the same manifest again (idempotent); the version as it is."),)),
    Operation("get_package", "GET", f"{LLMOS_BASE}/packages/{{digest}}", "The installed manifest with this package digest.", "model-packages", "models:read", ("LLMOS-PKG-010",), response=PackageManifest, errors=("package_not_found", "digest_invalid")),
    Operation("delete_model_version", "DELETE", V, "Delete an inactive, unloaded version.", "model-packages", "packages:write", ("LLMOS-PKG-009",), response=DeletedObject, errors=_LIFECYCLE_ERRORS, mutating=True),
    # data-management
    Operation("create_dataset", "POST", f"{LLMOS_BASE}/datasets", "Create a dataset owned by the caller (version 1, empty).", "data-management", "data:write", ("LLMOS-DATA-001",), request=DatasetCreateRequest, request_body="json", response=Dataset, status=201, errors=("already_exists",), mutating=True),
    Operation("list_datasets", "GET", f"{LLMOS_BASE}/datasets", "The caller's datasets, oldest first, with cursors.", "data-management", "data:read", ("LLMOS-DATA-001", "LLMOS-DATA-006"), response=DatasetList, errors=("cursor_invalid",), paged=True),
    Operation("get_dataset", "GET", D, "One dataset: its latest version and record count.", "data-management", "data:read", ("LLMOS-DATA-006", "LLMOS-DATA-013"), response=Dataset, errors=("dataset_not_found",)),
    Operation("delete_dataset", "DELETE", D, "Delete a dataset with every version and record.", "data-management", "data:write", ("LLMOS-DATA-006",), response=DeletedObject, errors=("dataset_not_found",), mutating=True),
    Operation("append_records", "POST", f"{D}/records", "Append a batch of records atomically (JSON or JSON Lines), making a new version.", "data-management", "data:write", ("LLMOS-DATA-002", "LLMOS-DATA-007", "LLMOS-DATA-012"), request=AppendRecordsRequest, request_body="json", response=AppendRecordsResponse, errors=("dataset_not_found", "record_invalid"), mutating=True, body_error_code="record_invalid", request_jsonl=True),
    Operation("list_dataset_versions", "GET", f"{D}/versions", "Every version of a dataset with its lineage.", "data-management", "data:read", ("LLMOS-DATA-008",), response=DatasetVersionList, errors=("dataset_not_found",)),
    Operation("query_dataset", "POST", f"{DR}/query", "One page of the records a filter matches, sorted and projected.", "data-management", "data:read", ("LLMOS-DATA-003", "LLMOS-DATA-009", "LLMOS-DATA-010"), request=QueryRequest, request_body="json", response=QueryResponse, errors=("dataset_not_found", "dataset_version_not_found", "cursor_invalid")),
    Operation("derive_dataset", "POST", f"{DR}/derive", "Run a preprocessing pipeline over a version: a new version, or a new dataset.", "data-management", "data:write", ("LLMOS-DATA-004", "LLMOS-DATA-011"), request=DeriveDatasetRequest, request_body="json", response=DataOperation, status=202, errors=("dataset_not_found", "dataset_version_not_found", "pipeline_invalid", "already_exists"), mutating=True, body_error_code="pipeline_invalid"),
    Operation("export_dataset", "GET", f"{DR}/export", "Every record of a version as JSON Lines, in index order.", "data-management", "data:read", ("LLMOS-DATA-005",), response_body="jsonl", errors=("dataset_not_found", "dataset_version_not_found")),
    Operation("get_operation", "GET", f"{LLMOS_BASE}/operations/{{operation_id}}", "A long-running data operation: progress, result or error.", "data-management", "data:read", ("LLMOS-DATA-011",), response=DataOperation, errors=("operation_not_found",)),
    # security
    Operation("get_principal", "GET", f"{LLMOS_BASE}/principal", "The principal and scopes of the calling key.", "security-baseline", "models:read", ("LLMOS-SEC-001",), response=Principal),
    Operation("create_key", "POST", f"{LLMOS_BASE}/keys", "Create a key; its secret is shown once.", "security-standard", "keys:manage", ("LLMOS-SEC-011",), request=KeyCreateRequest, request_body="json", response=ApiKeyWithSecret, status=201, mutating=True),
    Operation("list_keys", "GET", f"{LLMOS_BASE}/keys", "The caller's keys, without secrets.", "security-standard", "keys:manage", ("LLMOS-SEC-011",), response=ApiKeyList),
    Operation("revoke_key", "DELETE", f"{LLMOS_BASE}/keys/{{key_id}}", "Revoke a key, effective immediately.", "security-standard", "keys:manage", ("LLMOS-SEC-011",), response=DeletedObject, errors=("key_not_found",), mutating=True),
    Operation("list_audit_events", "GET", f"{LLMOS_BASE}/audit/events", "Audit events, oldest first, with cursors.", "security-standard", "audit:read", ("LLMOS-SEC-013",), response=AuditEventList, errors=("cursor_invalid",), paged=True),
    Operation("verify_audit_chain", "GET", f"{LLMOS_BASE}/audit/verify", "Verify the audit log's hash chain.", "security-strict", "audit:read", ("LLMOS-SEC-024",), response=AuditVerification),
    Operation("list_trusted_signers", "GET", f"{LLMOS_BASE}/trust/signers", "Signers whose packages the server installs.", "security-strict", "admin", ("LLMOS-SEC-025",), response=TrustedSignerList),
    Operation("add_trusted_signer", "POST", f"{LLMOS_BASE}/trust/signers", "Trust a signer's public key.", "security-strict", "admin", ("LLMOS-SEC-025",), request=SignerCreateRequest, request_body="json", response=TrustedSigner, status=201, errors=("already_exists",), mutating=True),
    Operation("remove_trusted_signer", "DELETE", f"{LLMOS_BASE}/trust/signers/{{signer_id}}", "Stop trusting a signer.", "security-strict", "admin", ("LLMOS-SEC-025",), response=DeletedObject, errors=("signer_not_found",), mutating=True),
)

OPERATIONS_BY_ID: dict[str, Operation] = {op.id: op for op in OPERATIONS}


def _path_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"{(\w+)}", template)
    return re.compile("".join(re.escape(part) if i % 2 == 0 else f"(?:{PATH_PARAMS[part]})" for i, part in enumerate(parts)))


_PATH_REGEXES = tuple((_path_regex(op.path), op.method) for op in OPERATIONS)


def allowed_methods(path: str, profiles: Iterable[str] | None = None) -> tuple[Method, ...]:
    """The methods the table defines on a concrete path (of ``profiles`` when given): the ``Allow`` of a 405 (RFC 9110 section 15.5.6)."""
    wanted = None if profiles is None else frozenset(profiles)
    methods = {op.method for (regex, _), op in zip(_PATH_REGEXES, OPERATIONS, strict=True) if regex.fullmatch(path) and (wanted is None or op.profile in wanted)}
    return tuple(m for m in ("GET", "HEAD", "POST", "PUT", "DELETE") if m in methods)

_AUTH_ERRORS = ("missing_api_key", "invalid_api_key", "insufficient_scope", "rate_limited", "host_not_allowed")
_JSON_ERRORS = ("invalid_json", "invalid_request", "missing_required_parameter", "invalid_value", "unsupported_media_type", "payload_too_large")


def error_codes(op: Operation) -> tuple[str, ...]:
    """Every error code the operation can return, in a stable order."""
    codes: list[str] = ["host_not_allowed"]
    if op.scope is not None:
        codes.extend(_AUTH_ERRORS)
    if op.request_body == "json":
        codes.extend(_JSON_ERRORS)
    if op.request_body == "bytes":
        codes.append("payload_too_large")
    codes.extend(op.errors)
    codes.append("internal_error")
    return tuple(dict.fromkeys(codes))
