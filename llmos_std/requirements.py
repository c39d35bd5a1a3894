"""The requirement registry: permanent IDs, level, the one normative sentence, profile and checks.

The sentence lives only here. The spec prose places it by ``{{req:ID}}``; the kit reports per ID.
IDs are never renumbered or reused: retire one with ``deprecated``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmos_std.profiles import ProfileName

Level = Literal["MUST", "SHOULD", "MAY"]
Surface = Literal["openai-wire", "llmos"]
"""``openai-wire``: behaviour of the OpenAI API itself that OpenAI clients rely on, so a correct
OpenAI-compatible server passes it as it is; ``llmos``: what the standard adds or tightens
(discovery, health, digests, the extra model fields, ``name@version``, the error-code table...)."""
REQUIREMENT_ID_PATTERN = r"^LLMOS-[A-Z]+-\d{3}$"


class Requirement(BaseModel):
    """One normative statement of the standard."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)

    id: str = Field(pattern=REQUIREMENT_ID_PATTERN)
    level: Level
    sentence: str
    """One sentence in RFC 2119 language; contains its level keyword."""
    profile: ProfileName
    since: str = "1.0"
    deprecated: str | None = None
    checks: tuple[str, ...] = ()
    """Names of the conformance checks that test it."""
    surface: Surface = "llmos"
    """Whether a plain OpenAI-compatible server is expected to meet it already (see ``Surface``)."""
    self_declared: bool = False
    """Not observable over HTTP (how keys are stored, constant-time comparison): the vendor declares it,
    the report shows it as such, and no kit check exists or is expected."""


OPENAI_WIRE: frozenset[str] = frozenset({
    "LLMOS-MOD-002", "LLMOS-MOD-004", "LLMOS-MOD-005", "LLMOS-PARAM-004", "LLMOS-ERR-001", "LLMOS-ERR-008", "LLMOS-PARAM-003",
    "LLMOS-INF-001", "LLMOS-INF-002", "LLMOS-INF-003", "LLMOS-INF-004", "LLMOS-INF-005", "LLMOS-INF-008",
    "LLMOS-INF-009", "LLMOS-INF-010", "LLMOS-INF-011",
    "LLMOS-STRM-001", "LLMOS-STRM-002", "LLMOS-STRM-004", "LLMOS-STRM-005",
    "LLMOS-EMB-001", "LLMOS-EMB-002", "LLMOS-EMB-003",
})
"""The requirements on the OpenAI wire itself; every other requirement is an LLMOS addition."""


def _r(id_: str, level: Level, profile: ProfileName, sentence: str, *checks: str, self_declared: bool = False) -> Requirement:
    surface: Surface = "openai-wire" if id_ in OPENAI_WIRE else "llmos"
    return Requirement(id=id_, level=level, sentence=sentence, profile=profile, checks=tuple(checks), surface=surface, self_declared=self_declared)


_CORE: tuple[Requirement, ...] = (
    _r("LLMOS-DISC-001", "MUST", "core", "A server MUST serve the discovery document at `GET /.well-known/llmos` without authentication, valid against the DiscoveryDocument schema.", "discovery_document_valid"),
    _r("LLMOS-DISC-002", "MUST", "core", "The discovery document MUST state the standard version as MAJOR.MINOR and every claimed profile together with the profiles it depends on.", "discovery_claims_consistent"),
    _r("LLMOS-DISC-003", "MUST", "core", "Every response under `/llmos/` and `/v1/` MUST carry an `LLMOS-Version` header equal to the discovery document's `standard_version`.", "version_header_present"),
    _r("LLMOS-DISC-004", "MUST", "core", "A server MUST refuse a request over a declared `max_tokens`, `max_n`, `max_stop`, `max_batch` or `max_prompt_tokens` limit with 400 `limit_exceeded` whose `param` names the field.", "declared_limits_enforced"),
    _r("LLMOS-DISC-005", "SHOULD", "core", "A server SHOULD serve its own effective OpenAPI document at `GET /llmos/v1/openapi.json`, whose `security` matches how it is configured: a bearer requirement when it needs keys, none when it does not.", "served_openapi_matches_auth"),
    _r("LLMOS-HLTH-001", "MUST", "core", "`GET /llmos/v1/health/live` and `GET /llmos/v1/health/ready` MUST answer without authentication with 200 and a Health body when the condition holds and 503 with a Health body otherwise.", "health_endpoints"),
    _r("LLMOS-HLTH-002", "MUST", "core", "A server MUST remain ready after any rejected request.", "ready_after_abuse"),
    _r("LLMOS-HLTH-003", "SHOULD", "core", "A server that runs several engine replicas SHOULD list them in `replicas` of `GET /llmos/v1/health/ready`, each with its state and the package digests it has loaded; a version it reports `ready` MUST be loaded on every replica in state `ready`.", "replicas_reported"),
    _r("LLMOS-MOD-001", "MUST", "core", "`GET /v1/models` MUST list every servable model as a ModelObject carrying `capabilities`, `context_length`, `version`, `digest`, `state` and `determinism`.", "models_list_valid"),
    _r("LLMOS-MOD-002", "MUST", "core", "A request naming a model that is not installed MUST fail with 404 `model_not_found` and MUST NOT be served by another model.", "unknown_model_404"),
    _r("LLMOS-MOD-003", "MUST", "core", "A server MUST accept the model ids `name`, `name@<semver>` and `name@sha256:<hex>`, serving the active version, the named version, or the version with that package digest.", "model_id_syntax"),
    _r("LLMOS-MOD-004", "MUST", "core", "A `model` value that does not follow the model-id syntax MUST fail with 400 `invalid_model_id` or 404 `model_not_found`.", "malformed_model_id"),
    _r("LLMOS-MOD-005", "MUST", "core", "`GET /v1/models/{model}` MUST return the listed model object for every id `GET /v1/models` lists, `/` in the id included, and 404 `model_not_found` for any other id.", "retrieve_model"),
    _r("LLMOS-ERR-001", "MUST", "core", "Every response with a 4xx or 5xx status, except a health endpoint's 503 and any answer to HEAD, MUST carry a JSON body valid against the ErrorEnvelope schema, with `code` a string from the error-code table or null.", "error_envelope_shape"),
    _r("LLMOS-ERR-002", "MUST", "core", "Every error code MUST be sent only with the status and type the error-code table binds it to.", "error_code_status_binding"),
    _r("LLMOS-ERR-003", "MUST", "core", "A body that is not valid JSON MUST fail with 400 `invalid_json`.", "malformed_json_400"),
    _r("LLMOS-ERR-004", "MUST", "core", "A request body of the wrong type, out of range, or missing a required field MUST fail with 400, code `invalid_value`, `missing_required_parameter` or `invalid_request`, and `param` naming the field when there is one.", "invalid_requests_400"),
    _r("LLMOS-ERR-005", "MUST", "core", "A JSON operation called with a Content-Type other than `application/json` MUST fail with 415 `unsupported_media_type`.", "wrong_content_type_415"),
    _r("LLMOS-ERR-006", "MUST", "core", "Error messages MUST NOT contain a stack trace, a file-system path of the server, or an exception class name.", "no_stack_traces"),
    _r("LLMOS-ERR-007", "MUST", "core", "An unknown path MUST fail with 404 `not_found` and a known path called with an unsupported method with 405 `method_not_allowed`, both in the envelope; the 405 MUST carry an `Allow` header listing the methods the standard defines on that path (RFC 9110, section 15.5.6).", "unknown_route_envelope"),
    _r("LLMOS-ERR-008", "MUST", "core", "A request valid against its operation's request schema and within the declared limits MUST NOT be answered with a 5xx status: it MUST get 200 with a body, or every streamed chunk, valid against the response schema, or a 4xx error envelope.", "valid_requests_never_5xx"),
    _r("LLMOS-ERR-009", "MUST", "core", "A failure the server did not foresee MUST be answered with 500 `internal_error`, its message carrying the request's `X-Request-Id` and nothing of the failure's internals; a model that fails while producing output MUST be answered with 500 `engine_error`, or with the LLMOS-STRM-005 error event of that code once a stream has begun.", self_declared=True),
    _r("LLMOS-PARAM-001", "MUST", "inference", "A request field that is not in the disposition table MUST fail with 400 `unsupported_parameter` whose `param` names it; it MUST NOT be silently ignored.", "unknown_field_refused"),
    _r("LLMOS-PARAM-002", "MUST", "inference", "A capability-gated field sent with a non-neutral value to a model without the capability MUST fail with 400 `unsupported_parameter` naming it.", "gated_field_refused"),
    _r("LLMOS-PARAM-003", "MUST", "inference", "Metadata fields MUST be accepted and MUST NOT change the output.", "metadata_fields_accepted"),
    _r("LLMOS-PARAM-004", "MUST", "inference", "A capability-gated field sent with one of its neutral values (values that ask for nothing, such as `parallel_tool_calls: false`, `modalities: [\"text\"]`, `service_tier: \"auto\"`, or `dimensions` equal to the model's own size) MUST be accepted by every model.", "neutral_values_accepted"),
)

_INFERENCE: tuple[Requirement, ...] = (
    _r("LLMOS-INF-001", "MUST", "inference", "`POST /v1/completions` and `POST /v1/chat/completions` MUST answer a valid request with 200 and a body valid against the response schema, `created` an integer of Unix seconds.", "completion_response_valid", "chat_response_valid"),
    _r("LLMOS-INF-002", "MUST", "inference", "`usage.total_tokens` MUST equal `prompt_tokens` plus `completion_tokens`, and `completion_tokens` MUST NOT exceed `max_tokens` times the number of choices.", "usage_adds_up"),
    _r("LLMOS-INF-003", "MUST", "inference", "When generation is cut by `max_tokens` (or its synonym `max_completion_tokens`), the choice's `finish_reason` MUST be `length`.", "max_tokens_length"),
    _r("LLMOS-INF-004", "MUST", "inference", "The output MUST NOT contain any stop string, MUST end where the first stop string began, and the choice's `finish_reason` MUST be `stop`, in streamed and unstreamed responses alike.", "stop_sequence_absent", "stop_sequence_absent_streamed"),
    _r("LLMOS-INF-005", "MUST", "inference", "A request with `n` MUST yield exactly `n` choices per prompt, indexed from 0 without gaps, each with exactly one `finish_reason`.", "n_choices_indexed"),
    _r("LLMOS-INF-006", "MUST", "inference", "For a model claiming `sequential` or `batch_invariant` determinism, identical requests with a `seed` sent one at a time MUST give identical output.", "seeded_sequential_identical"),
    _r("LLMOS-INF-007", "MUST", "inference", "Every completion response and stream chunk MUST carry the serving package's digest in `system_fingerprint`, and the HTTP response an `LLMOS-Model-Digest` header with the same value.", "digest_header_matches"),
    _r("LLMOS-INF-008", "MUST", "inference", "Response ids MUST be unique across responses.", "ids_unique"),
    _r("LLMOS-INF-009", "MUST", "inference", "Chat requests MUST honour the `developer` role as a system message, text content-part arrays as their concatenated text, and `max_completion_tokens` as a synonym of `max_tokens`.", "chat_input_forms"),
    _r("LLMOS-INF-010", "MUST", "inference", "A request whose prompt tokens plus requested completion exceed the model's context length MUST fail with 400 `context_length_exceeded`.", "context_length_exceeded"),
    _r("LLMOS-INF-011", "SHOULD", "inference", "`temperature: 0` SHOULD select greedy decoding, so that repeated requests give identical output.", "temperature_zero_greedy"),
    _r("LLMOS-INF-012", "MUST", "inference", "A request to a model that lacks the operation's capability MUST fail with 400 `capability_not_supported`.", "capability_checked"),
    _r("LLMOS-INF-013", "MUST", "inference", "A request that arrives while `max_concurrent` requests are in progress MUST either be served once capacity frees, or fail with 503 `not_ready` and a `Retry-After` header; being one request too many MUST NOT fail it in any other way.", "concurrency_overflow_handled"),
    _r("LLMOS-STRM-001", "MUST", "inference", "A streamed response MUST have Content-Type `text/event-stream` and consist only of `data: <json>` events, each followed by a blank line, and `:` comment lines, ending with `data: [DONE]`.", "stream_grammar", "stream_ends_with_done"),
    _r("LLMOS-STRM-002", "MUST", "inference", "Every streamed chunk MUST be valid against its chunk schema, and each choice index MUST receive exactly one non-null `finish_reason`.", "stream_chunks_valid"),
    _r("LLMOS-STRM-003", "MUST", "inference", "For a model claiming `sequential` or `batch_invariant` determinism, the concatenated stream of a seeded request MUST equal the unstreamed answer to the same request.", "stream_equals_nonstream"),
    _r("LLMOS-STRM-004", "MUST", "inference", "With `stream_options.include_usage` true, exactly one chunk MUST carry a non-null `usage`, with `choices` empty, as the last chunk before `[DONE]`; without it, chunks MUST NOT carry a non-null `usage`.", "include_usage_chunk"),
    _r("LLMOS-STRM-005", "MUST", "inference", "A failure after the 200 status has been sent MUST be reported as one `data:` event holding an ErrorEnvelope, followed by `data: [DONE]`.", "stream_error_event"),
    _r("LLMOS-STRM-006", "SHOULD", "inference", "A server SHOULD stop generating for a streamed request whose client has disconnected.", "disconnect_cancels"),
    _r("LLMOS-TOOL-001", "MUST", "inference", "With `tools` and `tool_choice` `required`, the answer MUST carry at least one call in `message.tool_calls` (with a named function: exactly one, of that function), each with a unique non-empty `id`, `type` `function`, a `function.name` among the tools and `function.arguments` the JSON text of an object valid against that function's `parameters`, and `finish_reason` MUST be `tool_calls`, except that a call `max_tokens` cut short ends with `length` and need not parse.", "tool_calls_valid", "tool_choice_honoured"),
    _r("LLMOS-TOOL-002", "MUST", "inference", "With `tool_choice` `none` the answer MUST carry no tool call; with `auto` every call it makes MUST meet LLMOS-TOOL-001, and `finish_reason` MUST be `tool_calls` exactly when it makes one.", "tool_choice_honoured"),
    _r("LLMOS-TOOL-003", "MUST", "inference", "A streamed call MUST arrive as `delta.tool_calls` fragments keyed by `index`, the first for an index carrying `id`, `type` and `function.name`, the later ones only `index` and `function.arguments` (no other key, not even null) with pieces that concatenate to the call's JSON text; under `sequential` determinism the concatenated calls MUST equal the unstreamed answer's, and `finish_reason` MUST be non-null exactly once per choice.", "tool_call_stream"),
    _r("LLMOS-TOOL-004", "MUST", "inference", "A history holding assistant `tool_calls` and `tool` messages answering them by `tool_call_id` MUST be accepted; a `tool` message whose `tool_call_id` answers no earlier call MUST fail with 400 `invalid_value` naming it.", "tool_result_round_trip"),
    _r("LLMOS-TOOL-005", "MUST", "inference", "A named `tool_choice` naming no function in `tools`, or a `tool_choice` other than `none` without `tools`, MUST fail with 400 `invalid_value` and `param` `tool_choice`; a tool's `parameters` that is not a valid JSON Schema with 400 `invalid_value`, and one the server cannot enforce with 400 `schema_unsupported`.", "tool_request_refusals"),
    _r("LLMOS-SO-001", "MUST", "inference", "With `response_format` `json_schema` and `strict` true, `message.content` MUST be a JSON text valid against the schema, for every schema within this section's strict subset, unless `finish_reason` is `length`.", "strict_outputs_validate"),
    _r("LLMOS-SO-002", "MUST", "inference", "With `response_format` `json_object`, `message.content` MUST be the JSON text of an object, or, when `finish_reason` is `length`, the beginning of one.", "json_object_output"),
    _r("LLMOS-SO-003", "MUST", "inference", "A `json_schema` whose `schema` is not a valid JSON Schema MUST fail with 400 `invalid_value`, and one using what the server cannot enforce with 400 `schema_unsupported`, each naming the field; a server MUST NOT answer a schema it does not enforce.", "structured_refusals"),
    _r("LLMOS-SO-004", "MUST", "inference", "Streamed structured content MUST concatenate to the same JSON text as the unstreamed answer under `sequential` determinism, and constrained requests MUST keep the model's determinism: the same seeded request gives the same output.", "structured_stream_equal"),
    _r("LLMOS-LOGP-001", "MUST", "inference", "With chat `logprobs` true, each choice MUST carry `logprobs.content` with one entry per completion token, each holding `token`, `bytes`, a `logprob` of at most 0 and exactly `top_logprobs` alternatives (fewer only where fewer tokens were possible) in descending order; at temperature 0 each chosen token MUST be the first alternative. Streamed, each chunk carries its tokens' entries, together one per completion token.", "chat_logprobs"),
    _r("LLMOS-LOGP-002", "MUST", "inference", "With completions `logprobs` N, each choice MUST carry `tokens`, `token_logprobs`, `top_logprobs` (at most N alternatives each, keyed by token text) and `text_offset` (non-decreasing), one element per completion token.", "completion_logprobs"),
    _r("LLMOS-RESP-001", "MUST", "responses", "`POST /v1/responses` with text or message-item `input` (and `instructions`) MUST answer a `response` object with `status` `completed`, or `incomplete` with `incomplete_details.reason` `max_output_tokens`, whose `output` holds the assistant's message with `output_text` parts, and `usage` whose `total_tokens` is `input_tokens` + `output_tokens`.", "responses_basic"),
    _r("LLMOS-RESP-002", "MUST", "responses", "With function `tools` and `tool_choice` `required`, `output` MUST hold `function_call` items with a `call_id`, a listed `name` and `arguments` valid against the tool's `parameters` (unless incomplete); an `input` carrying those items and `function_call_output` items naming their `call_id` MUST be accepted, and a `function_call_output` whose `call_id` names no earlier `function_call` in `input` MUST fail with 400 `invalid_value` naming it.", "responses_tools"),
    _r("LLMOS-RESP-003", "MUST", "responses", "With `text.format` `json_schema` and `strict` true, the message's text MUST be a JSON text valid against the schema for every schema of the strict subset of LLMOS-SO-001 (when incomplete, the beginning of one).", "responses_structured"),
    _r("LLMOS-RESP-004", "MUST", "responses", "A streamed response MUST send each event as an `event:` line equal to its data's `type` and a `data:` line, with `sequence_number` 0, 1, 2, ... in order, starting with `response.created` and `response.in_progress`, each item's events between its `response.output_item.added` and `response.output_item.done`, deltas concatenating to their `done` values, exactly one terminal `response.completed`, `response.incomplete` or `response.failed` last, then `data: [DONE]`; under `sequential` determinism the terminal response MUST equal the unstreamed one apart from ids and times.", "responses_stream"),
    _r("LLMOS-RESP-005", "MUST", "responses", "The `responses` profile keeps no responses: `store` true and `previous_response_id` MUST fail with 400 `unsupported_parameter` naming the field.", "responses_stateless"),
)

_EMBEDDINGS: tuple[Requirement, ...] = (
    _r("LLMOS-EMB-001", "MUST", "embeddings", "`POST /v1/embeddings` MUST answer with one embedding per input, `index` in input order from 0, all of equal dimension, valid against the response schema.", "embeddings_one_per_input"),
    _r("LLMOS-EMB-002", "MUST", "embeddings", "With `encoding_format: base64` each embedding MUST be the base64 of little-endian float32 values that decode to the `float` answer for the same input.", "embeddings_base64_matches"),
    _r("LLMOS-EMB-003", "MUST", "embeddings", "`usage.prompt_tokens` MUST be positive for non-empty input and equal `usage.total_tokens`.", "embeddings_usage"),
    _r("LLMOS-EMB-006", "MUST", "embeddings", "Every embeddings response MUST carry the serving package's digest in an `LLMOS-Model-Digest` header.", "embeddings_digest_header"),
    _r("LLMOS-EMB-004", "MUST", "embeddings", "A model with the `dimensions` capability MUST return vectors of exactly the requested `dimensions`; one without it MUST refuse the field with `unsupported_parameter`.", "embeddings_dimensions"),
    _r("LLMOS-EMB-005", "MUST", "embeddings", "The models list MUST state `dimensions` for embedding models, equal to the length of the vectors they return.", "embeddings_dimensions_declared"),
)

_MANAGEMENT: tuple[Requirement, ...] = (
    _r("LLMOS-MGMT-001", "MUST", "model-management", "`GET /llmos/v1/models` and `GET /llmos/v1/models/{name}` MUST list installed versions with their state, active flag and activation history.", "managed_models_listed"),
    _r("LLMOS-MGMT-002", "MUST", "model-management", "Load, unload and activate MUST answer 202 with the ModelVersion resource, and the version MUST settle in `ready` (or `installed` after unload) or `failed` within `max_load_seconds`.", "lifecycle_202_and_settles"),
    _r("LLMOS-MGMT-003", "MUST", "model-management", "A version MUST only move between states along the transitions of the lifecycle table.", "lifecycle_state_machine"),
    _r("LLMOS-MGMT-004", "MUST", "model-management", "An action requested in a state that does not allow it, or while another action on the version is in progress, MUST fail with 409 `state_conflict` and change nothing.", "lifecycle_conflicts_409"),
    _r("LLMOS-MGMT-005", "MUST", "model-management", "After activation settles, requests naming the bare model name MUST be served by the activated version, as the digest header shows.", "activate_switches_serving"),
    _r("LLMOS-MGMT-006", "MUST", "model-management", "Rollback MUST re-activate the version that was active before the current one in the activation history, regardless of SemVer order, and MUST fail with 409 `no_previous_version` when there is none.", "rollback_by_history"),
    _r("LLMOS-MGMT-007", "MUST", "model-management", "A failed load MUST leave the previously active version serving and the failed version in state `failed` with an `error`.", "failed_load_keeps_active"),
    _r("LLMOS-MGMT-008", "MUST", "model-management", "Unloading MUST let in-flight requests on that version complete before it leaves `unloading`.", "unload_drains"),
    _r("LLMOS-MGMT-009", "MUST", "model-management", "An unknown model or version in a lifecycle path MUST fail with 404 `model_not_found` or `version_not_found`.", "lifecycle_unknown_404"),
    _r("LLMOS-MGMT-010", "MUST", "model-management", "A request naming a version that is installed but not loaded MUST fail with 409 `model_not_loaded`.", "not_loaded_409"),
)

_PACKAGES: tuple[Requirement, ...] = (
    _r("LLMOS-PKG-001", "MUST", "model-packages", "`PUT /llmos/v1/blobs/{digest}` MUST store the body only when its sha256 equals the digest, answering 201 (or 200 when already stored), and MUST otherwise fail with 400 `digest_invalid` storing nothing.", "blob_upload_verified"),
    _r("LLMOS-PKG-002", "MUST", "model-packages", "Blob upload MUST be idempotent, and `HEAD /llmos/v1/blobs/{digest}` MUST answer 200 for a stored blob, 404 for a well-formed digest of no stored blob (the condition `blob_unknown` names; a HEAD answer has no body), and 400 for a malformed digest.", "blob_head_and_idempotent"),
    _r("LLMOS-PKG-003", "MUST", "model-packages", "`POST /llmos/v1/packages` MUST install a valid manifest whose blobs are all stored and verified, answering 201 with the new ModelVersion in state `installed` whose digest is the manifest's package digest.", "install_package"),
    _r("LLMOS-PKG-004", "MUST", "model-packages", "A manifest that is invalid MUST fail with 400 `manifest_invalid`, one that references a missing blob with 400 `manifest_blob_unknown`, and one with an unsafe path with 400 `path_invalid`, each leaving the registry unchanged.", "install_refusals"),
    _r("LLMOS-PKG-005", "MUST", "model-packages", "A package whose declared file sizes differ from the stored blobs' lengths MUST fail with 400 `size_invalid`, and one whose weights do not parse with 400 `weights_malformed`.", "install_verifies_blobs"),
    _r("LLMOS-PKG-006", "MUST", "model-packages", "A server MUST refuse packages in formats it does not declare in `accepted_formats` with 400 `format_forbidden`, and MUST NOT accept pickle-based weights unless it declares `pytorch-pickle`.", "format_forbidden"),
    _r("LLMOS-PKG-007", "MUST", "model-packages", "Installing the same manifest twice MUST be idempotent, the repeat answering 200 with the installed version unchanged; a different manifest under an existing name and version MUST fail with 409 `already_exists`.", "install_idempotent"),
    _r("LLMOS-PKG-008", "MUST", "model-packages", "Any interrupted upload or install MUST leave the registry as it was before it began.", "install_atomic"),
    _r("LLMOS-PKG-009", "MUST", "model-packages", "`DELETE /llmos/v1/models/{name}/versions/{version}` MUST remove an inactive, unloaded version and answer 200; the version then MUST be absent from every listing.", "delete_version"),
    _r("LLMOS-PKG-010", "MUST", "model-packages", "`GET /llmos/v1/packages/{digest}` MUST return the installed manifest whose package digest is `digest`, 404 `package_not_found` for any other well-formed digest, and 400 `digest_invalid` for a malformed one.", "get_manifest"),
    _r("LLMOS-PKG-011", "MUST", "model-packages", "The package digest MUST be the sha256 of the RFC 8785 canonicalization of the manifest JSON object as uploaded, with its `signatures` member removed.", "package_digest_canonical"),
    _r("LLMOS-PKG-012", "MUST", "model-packages", "A server MUST refuse to install a package whose `architecture` it cannot run with 400 `architecture_unsupported`, leaving the registry unchanged, rather than install a version that can never load.", "install_refusals"),
    _r("LLMOS-PKG-013", "MUST", "model-packages", "`GET /llmos/v1/blobs/{digest}` MUST return exactly the stored bytes, whose sha256 is the digest, for every blob of an installed package; an unknown digest MUST get `blob_unknown`.", "blob_download_exact"),
)

_TASKS: tuple[Requirement, ...] = (
    _r("LLMOS-TASK-001", "MUST", "tasks", "`POST /llmos/v1/tasks/{task}` MUST accept `translate`, `summarize` and `answer`, and MUST fail with 404 `task_not_found` for any other name.", "task_names"),
    _r("LLMOS-TASK-002", "MUST", "tasks", "A task response MUST be valid against TaskResponse with one result per input, `index` 0 to n-1 in input order, and `usage` counting every rendered prompt and every generated token.", "task_response_valid", "task_batch"),
    _r("LLMOS-TASK-003", "MUST", "tasks", "`translate` MUST require `target_language` and refuse a request without it with 400 `missing_required_parameter`.", "translate_requires_target"),
    _r("LLMOS-TASK-004", "MUST", "tasks", "`GET /llmos/v1/tasks` MUST list each offered task with the models able to run it, and each of those models MUST list the task in the `tasks` field of its `/v1/models` object; a model that does not offer a task MUST refuse it with 400 `capability_not_supported`.", "task_list"),
    _r("LLMOS-TASK-005", "MUST", "tasks", "A task `output` MUST be the generated text post-processed as specified: cut at the first of the template's stop strings, without special tokens, without a leading echo of the prompt or of the template's output prefix, and without leading or trailing White_Space characters.", "task_postprocessing"),
    _r("LLMOS-TASK-006", "MUST", "tasks", "With `stream: true` a task MUST answer with server-sent events of TaskChunk, each result's `delta`s concatenating to its post-processed output, `finish_reason` sent exactly once per result, a final chunk with `results: []` and `usage`, and `data: [DONE]` last.", "task_streaming"),
    _r("LLMOS-TASK-007", "MUST", "tasks", "A task whose rendered prompt plus `max_tokens` exceeds the model's context MUST fail with 400 `context_length_exceeded` under `truncation: disabled` (the default), and under `truncation: auto` MUST succeed by shortening the input (the `context` for `answer`) from its end, marking the result `truncated: true`.", "task_truncation"),
    _r("LLMOS-TASK-008", "MUST", "tasks", "A task request MUST refuse a field that belongs to another task (`target_language` on `summarize`, `context` on `translate`...) with 400 `unsupported_parameter` naming it.", "task_fields"),
    _r("LLMOS-TASK-009", "MUST", "tasks", "On a model claiming `sequential` determinism, identical task requests at temperature 0 sent one at a time MUST return identical outputs, and the streamed deltas MUST concatenate to the unstreamed output.", "task_deterministic"),
)

_DATA: tuple[Requirement, ...] = (
    _r("LLMOS-DATA-001", "MUST", "data-management", "Creating a dataset MUST answer 201 with a Dataset whose `owner` is the calling principal, at version 1 with no records; a name the caller already uses MUST fail with 409 `already_exists`, and a `schema` that is not a JSON Schema MUST fail with 400 `invalid_value`.", "dataset_create"),
    _r("LLMOS-DATA-002", "MUST", "data-management", "An append MUST be atomic: when any record is invalid (not a JSON object, not valid against the dataset's schema, or holding U+0000 or a lone surrogate) it MUST fail with 400 `record_invalid` whose `param` is `records.<i>` of the first invalid record, and no record of it may be stored or version created.", "dataset_append_atomic"),
    _r("LLMOS-DATA-003", "MUST", "data-management", "A query MUST page with opaque cursors through the version it started on, returning each matching record exactly once, even while records are appended, with `next_cursor` null on the last page; a malformed cursor, or one sent with a different query, MUST fail with 400 `cursor_invalid`.", "dataset_query_cursor", "dataset_pagination_while_appending"),
    _r("LLMOS-DATA-004", "MUST", "data-management", "Derive MUST apply the pipeline's steps in order exactly as this section defines them, reproducing every worked example; an unknown step, a missing or ill-typed member, or a model that cannot run a model step MUST fail with 400 `pipeline_invalid` before anything is created.", "dataset_pipeline", "dataset_worked_examples", "dataset_pipeline_properties"),
    _r("LLMOS-DATA-005", "MUST", "data-management", "Export MUST stream every record of the named version (the latest when none is named) as JSON Lines, one record object per line in index order, equal to the union of that version's query pages.", "dataset_export"),
    _r("LLMOS-DATA-006", "MUST", "data-management", "A deleted dataset MUST be absent from listings and fail with 404 `dataset_not_found` afterwards, in every operation.", "dataset_delete"),
    _r("LLMOS-DATA-007", "MUST", "data-management", "Every append and every derive into a dataset MUST create a new immutable version numbered one above its latest; `{dataset_id}@{n}` MUST read version n in query, export and derive, and a version that does not exist MUST fail with 404 `dataset_version_not_found`.", "dataset_versions", "dataset_state_machine"),
    _r("LLMOS-DATA-008", "MUST", "data-management", "`GET /llmos/v1/datasets/{dataset_id}/versions` MUST list every version oldest first with its lineage: operation, parent version, pipeline, records in and out, and creation time.", "dataset_lineage"),
    _r("LLMOS-DATA-009", "MUST", "data-management", "A query MUST return exactly the records its filter matches under the semantics of this section (types compared strictly, missing fields matching no comparison), ordered by its sort keys with ties in index order, each projected to `fields`.", "dataset_query_semantics"),
    _r("LLMOS-DATA-010", "MUST", "data-management", "A query beyond the language's bounds (a page over 1000 records, a filter deeper than 8 levels or larger than 256 nodes, more than 4 sort keys, an unknown operator or a malformed path) MUST fail with 400 `invalid_value` naming the field.", "dataset_query_bounds"),
    _r("LLMOS-DATA-011", "MUST", "data-management", "Derive MUST answer 202 with an operation that `GET /llmos/v1/operations/{operation_id}` reports until it `succeeded` (naming the version created) or `failed` (with the error, code `pipeline_failed` when a step stopped on a record); a failed derive MUST leave no dataset, version or record behind, and an operation id the caller cannot see MUST fail with 404 `operation_not_found`.", "dataset_derive_operation"),
    _r("LLMOS-DATA-012", "MUST", "data-management", "An append MUST accept the same batch as JSON Lines (`Content-Type: application/jsonl`, one object per line, blank lines ignored) with the same atomicity, `param` counting records from 0.", "dataset_append_jsonl"),
    _r("LLMOS-DATA-013", "MUST", "data-management", "A dataset, its versions and its operations MUST be visible only to the principal that owns them: for any other principal every operation on them MUST fail with 404 as if they did not exist.", "dataset_owner_isolation"),
)

_SECURITY: tuple[Requirement, ...] = (
    _r("LLMOS-SEC-001", "MUST", "security-baseline", "Every operation except discovery and health MUST require a bearer key, and a request without one MUST fail with 401 `missing_api_key` and a `WWW-Authenticate` header with the `Bearer` scheme per RFC 6750.", "auth_required_everywhere"),
    _r("LLMOS-SEC-002", "MUST", "security-baseline", "The authentication scheme MUST be matched case-insensitively and the key exactly: a wrong, truncated, extended, split or case-altered key MUST fail with 401 `invalid_api_key` and a `WWW-Authenticate: Bearer` challenge carrying `error=\"invalid_token\"`.", "key_compared_exactly"),
    _r("LLMOS-SEC-003", "MUST", "security-baseline", "A response MUST NOT echo a credential the client presented, valid or not, in its body or headers.", "no_credential_echo"),
    _r("LLMOS-SEC-004", "MUST", "security-baseline", "A body larger than `max_body_bytes` (or a blob larger than `max_blob_bytes`) MUST fail with 413 `payload_too_large`, whether its size is declared by `Content-Length` or it arrives chunked.", "body_limit_413"),
    _r("LLMOS-SEC-005", "MUST", "security-baseline", "A request whose Host header is not in the server's allowlist MUST fail with 403 `host_not_allowed` in the error envelope, with or without a key, keys configured or not.", "host_allowlist"),
    _r("LLMOS-SEC-006", "MUST", "security-baseline", "A server MUST NOT fetch a network URL supplied by the client.", "no_server_side_fetch"),
    _r("LLMOS-SEC-007", "MUST", "security-baseline", "A server MUST NOT answer `Access-Control-Allow-Origin: *` together with `Access-Control-Allow-Credentials: true`, and MUST NOT reflect an origin it was not configured to allow.", "cors_not_wildcard_with_credentials"),
    _r("LLMOS-SEC-008", "MUST", "security-baseline", "Every route a server answers besides its operations, such as documentation pages, a served OpenAPI document, metrics, tokenizer or server-state routes, MUST require the bearer key too: without one it MUST answer 401, or 404 or 405 when it serves nothing there.", "side_routes_need_keys"),
    _r("LLMOS-SEC-009", "MUST", "security-baseline", "A field bounded by a declared limit MUST be refused with 400 naming it for absurd values too (2^63, negative, fractional, or a numeric string), and the server MUST stay ready after each hostile request.", "limits_absurd_values"),
    _r("LLMOS-SEC-010", "MUST", "security-standard", "A key without the scope an operation requires MUST fail with 403 `insufficient_scope` and a `WWW-Authenticate: Bearer` challenge carrying `error=\"insufficient_scope\"`, model management, key management and audit each needing their own scope.", "scope_enforced"),
    _r("LLMOS-SEC-011", "MUST", "security-standard", "A created key's secret MUST appear only in the creating response, which MUST carry `Cache-Control: no-store`; revocation and expiry MUST take effect on the next request, and revoking a key that does not exist or is not the caller's MUST fail with 404 `key_not_found`.", "key_lifecycle"),
    _r("LLMOS-SEC-012", "MUST", "security-standard", "A key over its rate limit MUST fail with 429 `rate_limited` and a `Retry-After` header, and MUST NOT slow down or refuse any other key.", "rate_limit_429"),
    _r("LLMOS-SEC-013", "MUST", "security-standard", "Every mutating call, allowed or denied, MUST produce an audit event naming the actor, the operation, the target, the outcome, the status and the request id, listed by `GET /llmos/v1/audit/events` with cursor paging (a cursor the server did not issue failing with 400 `cursor_invalid`), and audit output MUST NOT contain any secret.", "audit_events_recorded"),
    _r("LLMOS-SEC-014", "MUST", "security-standard", "Every response MUST carry an `X-Request-Id` header, echoing a well-formed one the client sent.", "request_id_header"),
    _r("LLMOS-SEC-015", "MUST", "security-standard", "A server MUST store keys only in a form from which the secret cannot be recovered, such as a hash, and MUST compare presented keys in constant time.", self_declared=True),
    _r("LLMOS-SEC-017", "MUST", "security-standard", "A hostile package upload (a blob whose bytes miss its digest, a malformed digest, a traversal, absolute or duplicate path, a blob never uploaded, a weights file with a malformed header) MUST be refused with its 4xx package error code, leave the registry unchanged and leave the server ready.", "upload_hardening"),
    _r("LLMOS-SEC-016", "SHOULD", "security-standard", "Responses to a key with a rate limit SHOULD carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers that count down as the key is used.", "rate_limit_headers"),
    _r("LLMOS-SEC-020", "MUST", "security-strict", "A server MUST install only packages carrying a model-signing bundle from a trusted signer that verifies against the package's files and its manifest without signatures, refusing an unsigned package with 403 `signature_required`, one signed only by untrusted keys with 403 `untrusted_signer`, and one whose trusted signature does not verify (tampered, forged or taken from another package) with 400 `signature_mismatch`, each leaving the registry unchanged.", "signed_packages_only"),
    _r("LLMOS-SEC-021", "MUST", "security-strict", "A server MUST refuse packages carrying pickle weights, code files or `auto_map` entries with 400 `format_forbidden`.", "no_code_in_packages"),
    _r("LLMOS-SEC-022", "MUST", "security-strict", "A resource owned by another principal MUST be answered as 404, never 403, and MUST NOT appear in listings; data one principal sends MUST NOT appear in any response to another.", "owner_isolation"),
    _r("LLMOS-SEC-023", "MUST", "security-strict", "Server-owned fields such as `owner`, `id` and `created` MUST NOT be writable by clients.", "server_fields_readonly"),
    _r("LLMOS-SEC-024", "MUST", "security-strict", "The audit log MUST be hash-chained as this specification constructs it, so that a client can recompute every link from the listed events, MUST be verifiable through `GET /llmos/v1/audit/verify`, and its events MUST NOT be modifiable or deletable through any operation.", "audit_chain_verifiable"),
    _r("LLMOS-SEC-025", "MUST", "security-strict", "Trust in signers MUST come only from server configuration or the admin-scoped trust operations, never from a package, and removing a signer the trust operations did not add MUST fail with 404 `signer_not_found`.", "trust_from_configuration"),
)

REQUIREMENTS: tuple[Requirement, ...] = (
    *_CORE, *_INFERENCE, *_EMBEDDINGS, *_MANAGEMENT, *_PACKAGES, *_TASKS, *_DATA, *_SECURITY,
)

REQUIREMENTS_BY_ID: dict[str, Requirement] = {req.id: req for req in REQUIREMENTS}


def requirements_of(profile: ProfileName) -> tuple[Requirement, ...]:
    return tuple(req for req in REQUIREMENTS if req.profile == profile)


def registry_problems() -> list[str]:
    """Self-consistency of the registry: unique IDs, level keyword in the sentence, MUSTs with checks."""
    problems: list[str] = []
    seen: set[str] = set()
    for req in REQUIREMENTS:
        if req.id in seen:
            problems.append(f"{req.id}: duplicate id")
        seen.add(req.id)
        if re.search(rf"\b{req.level}\b", req.sentence) is None:
            problems.append(f"{req.id}: sentence lacks its level keyword {req.level}")
        if req.level == "MUST" and not req.checks and not req.self_declared:
            problems.append(f"{req.id}: a MUST without a check")
        if req.self_declared and req.checks:
            problems.append(f"{req.id}: self-declared yet checked")
    problems.extend(f"{rid}: classified openai-wire but not in the registry" for rid in sorted(OPENAI_WIRE - seen))
    return problems
