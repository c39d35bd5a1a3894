"""The disposition of every request field: honoured, metadata, capability-gated or unknown.

Compared against the request types of the official ``openai`` Python SDK 3.57.0 (generated from
OpenAI's OpenAPI document): every field of its chat, completions and embeddings parameters has a row.

One table answers "what does the server do with field X?" for servers, the kit and the spec,
so no field is ever silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, JsonValue

from llmos_std.inference import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

Disposition = Literal["honoured", "metadata", "capability-gated"]
"""``unknown`` is every field not in the table: it is refused with ``unsupported_parameter``."""

Capability = Literal[
    "text-generation",
    "chat",
    "embeddings",
    "tasks",
    "tools",
    "structured-outputs",
    "logprobs",
    "logit-bias",
    "penalties",
    "dimensions",
    "vision",
    "echo",
    "suffix",
    "best-of",
    "service-tiers",
    "reasoning",
    "verbosity",
    "audio-output",
    "predicted-outputs",
    "web-search",
    "moderation",
    "legacy-functions",
]
"""What a model can do; ``GET /v1/models`` lists each model's capabilities."""


@dataclass(frozen=True)
class FieldDisposition:
    operation: str
    field: str
    disposition: Disposition
    capability: Capability | None = None
    neutral: tuple[JsonValue, ...] = ()
    """Values of a gated field that ask for nothing and are accepted without the capability."""
    effect: str = ""


def _h(op: str, field: str, effect: str) -> FieldDisposition:
    return FieldDisposition(op, field, "honoured", effect=effect)


def _m(op: str, field: str) -> FieldDisposition:
    return FieldDisposition(op, field, "metadata", effect="accepted; no effect on output")


def _g(op: str, field: str, cap: Capability, *neutral: JsonValue) -> FieldDisposition:
    return FieldDisposition(op, field, "capability-gated", cap, tuple(neutral), f"honoured with capability `{cap}`")


def _sampling(op: str) -> list[FieldDisposition]:
    return [
        _h(op, "model", "selects the model and version that serves the request"),
        _h(op, "max_tokens", "bounds completion tokens per choice; finish_reason `length` when reached"),
        _h(op, "n", "number of choices, indexed 0..n-1"),
        _h(op, "stop", "output ends before the first stop string, which is never included"),
        _h(op, "seed", "seeds sampling; reproducible under the model's determinism"),
        _h(op, "temperature", "scales sampling; 0 is greedy"),
        _h(op, "top_p", "nucleus sampling"),
        _h(op, "stream", "server-sent events ending with `data: [DONE]`"),
        _h(op, "stream_options", "`include_usage` adds one usage chunk before `[DONE]`"),
        _m(op, "user"),
        _g(op, "logprobs", "logprobs", None, False, 0),
        _g(op, "logit_bias", "logit-bias", None, {}),
        _g(op, "presence_penalty", "penalties", None, 0, 0.0),
        _g(op, "frequency_penalty", "penalties", None, 0, 0.0),
    ]


CHAT = "create_chat_completion"
COMPLETION = "create_completion"
EMBEDDING = "create_embedding"

DISPOSITIONS: tuple[FieldDisposition, ...] = (
    *_sampling(CHAT),
    _h(CHAT, "messages", "the conversation, rendered with the model's chat template; `developer` is a system message; text parts concatenate"),
    _h(CHAT, "max_completion_tokens", "synonym of `max_tokens`"),
    _m(CHAT, "metadata"),
    _m(CHAT, "store"),
    _g(CHAT, "response_format", "structured-outputs", None, {"type": "text"}),
    _g(CHAT, "top_logprobs", "logprobs", None, 0),
    _g(CHAT, "tools", "tools", None, []),
    _g(CHAT, "tool_choice", "tools", None, "none"),
    _g(CHAT, "parallel_tool_calls", "tools", None, False),
    _g(CHAT, "functions", "legacy-functions", None, []),
    _g(CHAT, "function_call", "legacy-functions", None, "none"),
    _g(CHAT, "service_tier", "service-tiers", None, "auto", "default"),
    _g(CHAT, "reasoning_effort", "reasoning", None),
    _g(CHAT, "verbosity", "verbosity", None),
    _g(CHAT, "modalities", "audio-output", None, ["text"]),
    _g(CHAT, "audio", "audio-output", None),
    _g(CHAT, "prediction", "predicted-outputs", None),
    _g(CHAT, "web_search_options", "web-search", None),
    _g(CHAT, "moderation", "moderation", None),
    _m(CHAT, "prompt_cache_key"),
    _m(CHAT, "prompt_cache_retention"),
    _m(CHAT, "prompt_cache_options"),
    _m(CHAT, "safety_identifier"),
    *_sampling(COMPLETION),
    _h(COMPLETION, "prompt", "the text continued; an array is a batch of prompts; token-id arrays are prompts already tokenized"),
    _g(COMPLETION, "echo", "echo", None, False),
    _g(COMPLETION, "suffix", "suffix", None),
    _g(COMPLETION, "best_of", "best-of", None, 1),
    _h(EMBEDDING, "model", "selects the embedding model"),
    _h(EMBEDDING, "input", "one vector per input, in order; token-id arrays are inputs already tokenized"),
    _h(EMBEDDING, "encoding_format", "`float` arrays or `base64` little-endian float32"),
    _g(EMBEDDING, "dimensions", "dimensions", None),
    # `dimensions` equal to the model's own size also asks for nothing: accepted without the capability.
    _m(EMBEDDING, "user"),
)

REQUEST_MODELS: dict[str, type[BaseModel]] = {
    CHAT: ChatCompletionRequest,
    COMPLETION: CompletionRequest,
    EMBEDDING: EmbeddingRequest,
}


def disposition_of(operation: str, field: str) -> FieldDisposition | None:
    """The row for a field, or None when the field is unknown (and therefore refused)."""
    for row in DISPOSITIONS:
        if row.operation == operation and row.field == field:
            return row
    return None


def gated_fields_in_use(operation: str, body: BaseModel, capabilities: frozenset[str]) -> list[FieldDisposition]:
    """The gated fields a request sets to a non-neutral value that the model cannot honour."""
    refused: list[FieldDisposition] = []
    sent = body.model_dump(exclude_unset=True, mode="json")
    for row in DISPOSITIONS:
        if row.operation != operation or row.disposition != "capability-gated" or row.field not in sent:
            continue
        value = sent[row.field]
        if value in row.neutral or row.capability in capabilities:
            continue
        refused.append(row)
    return refused
