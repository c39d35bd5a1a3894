"""Defects in datasets and tasks: each breaks one data-management or tasks requirement as real servers do.

Request and response rewrites in the same defect layer, plus two ``around`` wrappers that drive the
app differently (a non-atomic append, a delete that deletes nothing).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from tests.conformance.faulty.lifecycle_defects import Call, Response

if TYPE_CHECKING:
    from tests.conformance.faulty.defects import Defect, Headers, RequestRewrite, ResponseRewrite

_QUERY = re.compile(r"^/llmos/v1/datasets/[^/]+/query$")
_RECORDS = re.compile(r"^/llmos/v1/datasets/([^/]+)/records$")
_EXPORT = re.compile(r"^/llmos/v1/datasets/[^/]+/export$")
_DERIVE = re.compile(r"^/llmos/v1/datasets/[^/]+/derive$")
_VERSIONS = re.compile(r"^/llmos/v1/datasets/[^/]+/versions$")
_DATASET = re.compile(r"^/llmos/v1/datasets/([^/@]+)$")
_OPERATION = re.compile(r"^/llmos/v1/operations/[^/]+$")
_TASK = re.compile(r"^/llmos/v1/tasks/([a-z_]+)$")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _response(pattern: re.Pattern[str], fn: Any, *, status: int = 200) -> ResponseRewrite:
    def rewrite(path: str, req: dict[str, Any] | None, code: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        doc = _json(body)
        if code == status and pattern.match(path) and isinstance(doc, dict):
            fn(doc, req)
            body = json.dumps(doc).encode()
        return code, headers, body

    return rewrite


def _request(pattern: re.Pattern[str], fn: Any) -> RequestRewrite:
    def rewrite(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        doc = _json(body)
        if pattern.match(path) and isinstance(doc, dict):
            fn(doc, path)
            body = json.dumps(doc).encode()
        return headers, body

    return rewrite


# ---------------------------------------------------------------- data


def _drop_first_record(doc: dict[str, Any], req: Any) -> None:
    if doc.get("data"):
        doc["data"] = doc["data"][1:]


def _no_next_page(doc: dict[str, Any], req: Any) -> None:
    doc["next_cursor"] = None


def _clamp_limit(doc: dict[str, Any], path: str) -> None:
    if isinstance(doc.get("limit"), int) and doc["limit"] > 1000:
        doc["limit"] = 1000


def _no_lowercase(doc: dict[str, Any], path: str) -> None:
    """``lowercase`` quietly runs as ``strip``: the server accepts the step and does something else."""
    for step in doc.get("pipeline", []) if isinstance(doc.get("pipeline"), list) else []:
        if isinstance(step, dict) and step.get("op") == "lowercase":
            step["op"] = "strip"


def _version_not_bumped(doc: dict[str, Any], req: Any) -> None:
    if isinstance(doc.get("version"), int) and doc["version"] > 1:
        doc["version"] -= 1


def _no_parents(doc: dict[str, Any], req: Any) -> None:
    for version in doc.get("data", []):
        version["parent"] = None


def _other_owner(doc: dict[str, Any], req: Any) -> None:
    doc["owner"] = "someone-else"


def _failure_hidden(doc: dict[str, Any], req: Any) -> None:
    if doc.get("status") == "failed":
        doc.update(status="succeeded", error=None, result={"dataset_id": "ds_phantom", "version": 1})


def _export_short(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    if status == 200 and _EXPORT.match(path) and body.count(b"\n") > 1:
        body = b"".join(body.splitlines(keepends=True)[:-1])
    return status, headers, body


def _jsonl_refused(path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    if _RECORDS.match(path) and headers.get("content-type", "").startswith("application/jsonl"):
        headers = {**headers, "content-type": "text/plain"}
    return headers, body


async def append_not_atomic(call: Call) -> Response:
    """Stores the records one at a time: a bad record refuses the batch after the good ones before it were kept."""
    doc = call.json()
    if call.method != "POST" or not _RECORDS.match(call.path) or not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        return await call.send()
    last: Response | None = None
    for i, record in enumerate(doc["records"]):
        last = await call.send(body=json.dumps({"records": [record]}).encode())
        if last[0] != 200:
            error = _json(last[2])
            if isinstance(error, dict) and isinstance(error.get("error"), dict):
                error["error"]["param"] = f"records.{i}"
                return last[0], last[1], json.dumps(error).encode()
            return last
    assert last is not None
    result = _json(last[2])
    if isinstance(result, dict):
        result["appended"] = len(doc["records"])
        return last[0], last[1], json.dumps(result).encode()
    return last


async def delete_keeps_dataset(call: Call) -> Response:
    """Answers a dataset DELETE as done and deletes nothing."""
    match = _DATASET.match(call.path)
    if call.method != "DELETE" or match is None:
        return await call.send()
    body = json.dumps({"id": match.group(1), "object": "llmos.dataset", "deleted": True}).encode()
    return 200, [(b"content-type", b"application/json")], body


# ---------------------------------------------------------------- tasks


def _untrimmed(doc: dict[str, Any], req: Any) -> None:
    for result in doc.get("results", []):
        result["output"] = " " + result["output"] + "\n"


def _results_reversed(doc: dict[str, Any], req: Any) -> None:
    """Results of a batch in reverse order, each keeping its position's index (so index no longer names the input)."""
    results = doc.get("results", [])
    for position, result in enumerate(results):
        result["index"] = len(results) - 1 - position


def _nondeterministic(doc: dict[str, Any], req: Any) -> None:
    import secrets

    for result in doc.get("results", []):
        result["output"] = result["output"] + secrets.token_hex(2)


def _drop_usage_chunk(path: str, req: dict[str, Any] | None, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    if not _TASK.match(path) or b"text/event-stream" not in b"".join(v for k, v in headers if k.lower() == b"content-type"):
        return status, headers, body
    events = [e for e in body.decode().split("\n\n") if e]
    kept = [e for e in events if '"results": []' not in e and '"results":[]' not in e]
    return status, headers, "".join(f"{e}\n\n" for e in kept).encode()


def _task_field_dropped(doc: dict[str, Any], path: str) -> None:
    match = _TASK.match(path)
    task = match.group(1) if match else ""
    own = {"translate": {"target_language", "source_language"}, "summarize": {"max_words"}, "answer": {"context"}}.get(task, set())
    for field in ("target_language", "source_language", "max_words", "context"):
        if field not in own:
            doc.pop(field, None)


def _target_defaulted(doc: dict[str, Any], path: str) -> None:
    if path.endswith("/translate"):
        doc.setdefault("target_language", "fr")


def _truncation_ignored(doc: dict[str, Any], path: str) -> None:
    doc.pop("truncation", None)


def _model_unlisted(doc: dict[str, Any], req: Any) -> None:
    for task in doc.get("data", []):
        task["models"] = task["models"][1:]


def build_data_defects() -> list[Defect]:
    from tests.conformance.faulty.defects import Defect

    return [
        Defect("dataset_owner_wrong", "LLMOS-DATA-001", response=_response(re.compile(r"^/llmos/v1/datasets$"), _other_owner, status=201)),
        Defect("append_not_atomic", "LLMOS-DATA-002", around=append_not_atomic, prefix="/llmos/v1/datasets/"),
        Defect("last_page_early", "LLMOS-DATA-003", response=_response(_QUERY, _no_next_page)),
        Defect("lowercase_skipped", "LLMOS-DATA-004", request=_request(_DERIVE, _no_lowercase)),
        Defect("export_drops_last", "LLMOS-DATA-005", response=_export_short),
        Defect("delete_keeps_dataset", "LLMOS-DATA-006", around=delete_keeps_dataset, prefix="/llmos/v1/datasets/"),
        Defect("version_not_bumped", "LLMOS-DATA-007", response=_response(_RECORDS, _version_not_bumped)),
        Defect("lineage_without_parents", "LLMOS-DATA-008", response=_response(_VERSIONS, _no_parents)),
        Defect("query_loses_matches", "LLMOS-DATA-009", response=_response(_QUERY, _drop_first_record)),
        Defect("page_size_clamped", "LLMOS-DATA-010", request=_request(_QUERY, _clamp_limit)),
        Defect("failed_derive_reported_done", "LLMOS-DATA-011", response=_response(_OPERATION, _failure_hidden)),
        Defect("jsonl_refused", "LLMOS-DATA-012", request=_jsonl_refused),
        Defect("task_model_unlisted", "LLMOS-TASK-004", response=_response(re.compile(r"^/llmos/v1/tasks$"), _model_unlisted)),
        Defect("task_output_untrimmed", "LLMOS-TASK-005", response=_response(_TASK, _untrimmed)),
        Defect("task_results_reordered", "LLMOS-TASK-002", response=_response(_TASK, _results_reversed)),
        Defect("task_stream_without_usage", "LLMOS-TASK-006", response=_drop_usage_chunk),
        Defect("task_truncation_ignored", "LLMOS-TASK-007", request=_request(_TASK, _truncation_ignored)),
        Defect("task_foreign_field_ignored", "LLMOS-TASK-008", request=_request(_TASK, _task_field_dropped)),
        Defect("translate_target_defaulted", "LLMOS-TASK-003", request=_request(_TASK, _target_defaulted)),
        Defect("task_output_nondeterministic", "LLMOS-TASK-009", response=_response(_TASK, _nondeterministic)),
    ]
