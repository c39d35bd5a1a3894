"""Defects in tool calling, structured outputs, logprobs and the Responses API: each breaks one requirement the kit must catch."""

from __future__ import annotations

import re
from typing import Any

from tests.conformance.faulty.defects import Defect, Headers, _is_sse, _on_chunks, _on_json, _request_json


def _calls_end_with_stop(doc: dict[str, Any]) -> None:
    for choice in doc.get("choices") or []:
        if (choice.get("message") or {}).get("tool_calls"):
            choice["finish_reason"] = "stop"


def _none_means_required(doc: dict[str, Any]) -> None:
    if doc.get("tool_choice") == "none":
        doc["tool_choice"] = "required"


def _fragments_unnamed(doc: dict[str, Any]) -> None:
    for choice in doc.get("choices") or []:
        for fragment in (choice.get("delta") or {}).get("tool_calls") or []:
            fragment.pop("id", None)


def _schema_ignored(doc: dict[str, Any]) -> None:
    if isinstance(doc.get("response_format"), dict) and doc["response_format"].get("type") == "json_schema":
        doc.pop("response_format")


def _orphans_dropped(doc: dict[str, Any]) -> None:
    messages = doc.get("messages")
    if isinstance(messages, list):
        doc["messages"] = [m for m in messages if not (isinstance(m, dict) and m.get("tool_call_id") == "call_llmos_kit_answers_nothing")]


def _last_logprob_dropped(doc: dict[str, Any]) -> None:
    for choice in doc.get("choices") or []:
        content = (choice.get("logprobs") or {}).get("content")
        if content:
            content.pop()


def _legacy_logprob_dropped(doc: dict[str, Any]) -> None:
    for choice in doc.get("choices") or []:
        legacy = choice.get("logprobs") or {}
        if legacy.get("token_logprobs"):
            legacy["token_logprobs"].pop()


def _sequence_stuck(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    if path.endswith("/v1/responses") and _is_sse(headers):
        body = re.sub(rb'"sequence_number":\d+', b'"sequence_number":0', body)
    return status, headers, body


def _stateful_fields_dropped(doc: dict[str, Any]) -> None:
    if "input" in doc:
        doc.pop("store", None)
        doc.pop("previous_response_id", None)


def _orphan_outputs_dropped(doc: dict[str, Any]) -> None:
    items = doc.get("input")
    if isinstance(items, list):
        doc["input"] = [i for i in items if not (isinstance(i, dict) and i.get("call_id") == "call_llmos_kit_answers_nothing")]


def build_tool_defects() -> list[Defect]:
    return [
        Defect("tool_call_finish_stop", "LLMOS-TOOL-001", response=_on_json(_calls_end_with_stop)),
        Defect("tool_choice_none_ignored", "LLMOS-TOOL-002", request=_request_json(_none_means_required)),
        Defect("tool_fragment_without_id", "LLMOS-TOOL-003", response=_on_chunks(_fragments_unnamed)),
        Defect("orphan_tool_result_accepted", "LLMOS-TOOL-004", request=_request_json(_orphans_dropped)),
        Defect("json_schema_ignored", "LLMOS-SO-001", request=_request_json(_schema_ignored)),
        Defect("chat_logprob_missing", "LLMOS-LOGP-001", response=_on_json(_last_logprob_dropped)),
        Defect("legacy_logprob_missing", "LLMOS-LOGP-002", response=_on_json(_legacy_logprob_dropped)),
        Defect("responses_orphan_output_accepted", "LLMOS-RESP-002", request=_request_json(_orphan_outputs_dropped)),
        Defect("responses_sequence_stuck", "LLMOS-RESP-004", response=_sequence_stuck),
        Defect("responses_stateful_fields_ignored", "LLMOS-RESP-005", request=_request_json(_stateful_fields_dropped)),
    ]
