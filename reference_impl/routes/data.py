"""data-management: datasets, atomic appends (JSON or JSON Lines), versions, queries, derive and export."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response, StreamingResponse

from llmos_std.data import (
    DATASET_ID_PATTERN,
    DATASET_REF_PATTERN,
    DATASET_VERSION_HEADER,
    JSONL_MEDIA_TYPES,
    AppendRecordsResponse,
    DatasetCreateRequest,
    DatasetList,
    DatasetVersionList,
    DeriveDatasetRequest,
    QueryResponse,
)
from llmos_std.errors import LLMOSError
from llmos_std.management import DeletedObject
from llmos_std.query import QueryRequest
from llmos_std.validation import error_from_validation, validate_json_body

from reference_impl.datastore import DataStore, dumps
from reference_impl.derive import Operations, check_pipeline, start_derive
from reference_impl.http import Context, Handler, wire_json

_ID = re.compile(f"^{DATASET_ID_PATTERN}$")
_REF = re.compile(f"^{DATASET_REF_PATTERN}$")
_LIST_LIMIT = 1000


def _store(ctx: Context) -> DataStore:
    store: DataStore = ctx.state.datastore
    return store


def _dataset_id(ctx: Context) -> str:
    value = ctx.path("dataset_id")
    if _ID.match(value) is None:
        raise LLMOSError("dataset_not_found", f"no dataset {value!r}", param="dataset_id")
    return value


def _dataset_ref(ctx: Context) -> tuple[str, int | None]:
    value = ctx.path("dataset_ref")
    if _REF.match(value) is None:
        raise LLMOSError("dataset_not_found", f"no dataset {value!r}", param="dataset_ref")
    dataset_id, _, version = value.partition("@")
    return dataset_id, int(version) if version else None


async def create_dataset(ctx: Context) -> Response:
    body = ctx.body
    if not isinstance(body, DatasetCreateRequest):
        raise LLMOSError("invalid_request", "unexpected body")
    if body.schema_ is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(body.schema_)
        except jsonschema.SchemaError as exc:
            raise LLMOSError("invalid_value", f"schema is not a valid JSON Schema: {exc.message}", param="schema") from None
    dataset = await asyncio.to_thread(_store(ctx).create, ctx.principal, body.name, body.description, body.schema_, list(body.indexes))
    return wire_json(dataset, status=201)


async def list_datasets(ctx: Context) -> Response:
    params = ctx.request.query_params
    raw_limit = params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _LIST_LIMIT:
        raise LLMOSError("invalid_value", f"limit must be an integer from 1 to {_LIST_LIMIT}", param="limit")
    after = None
    if "cursor" in params:
        try:
            after = base64.urlsafe_b64decode(params["cursor"] + "=" * (-len(params["cursor"]) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            after = None
        if after is None or _ID.match(after) is None:
            raise LLMOSError("cursor_invalid", "the cursor is not one this server issued", param="cursor")
    page, last = await asyncio.to_thread(_store(ctx).list_datasets, ctx.principal, after=after, limit=int(raw_limit))
    cursor = base64.urlsafe_b64encode(last.encode()).decode().rstrip("=") if last else None
    return wire_json(DatasetList(data=page, next_cursor=cursor))


async def get_dataset(ctx: Context) -> Response:
    return wire_json(await asyncio.to_thread(_store(ctx).get, ctx.principal, _dataset_id(ctx)))


async def delete_dataset(ctx: Context) -> Response:
    dataset_id = _dataset_id(ctx)
    await asyncio.to_thread(_store(ctx).delete, ctx.principal, dataset_id)
    return wire_json(DeletedObject(id=dataset_id, object="llmos.dataset", deleted=True))


def _parse_jsonl(data: bytes) -> list[Any]:
    records: list[Any] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip(b" \t\r"):
            continue
        try:
            records.append(json.loads(line))
        except (ValueError, UnicodeDecodeError):
            raise LLMOSError("record_invalid", f"line {number} is not a JSON value; nothing was stored", param=f"records.{len(records)}") from None
        except RecursionError:
            raise LLMOSError("record_invalid", f"line {number} is nested too deeply; nothing was stored", param=f"records.{len(records)}") from None
    if not records:
        raise LLMOSError("missing_required_parameter", "the body holds no record", param="records")
    return records


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _serialise(records: list[Any], schema: Any) -> list[str]:
    """Every record checked before any is stored: the first bad one refuses the batch."""
    validator = jsonschema.Draft202012Validator(schema) if schema is not None else None
    texts: list[str] = []
    for i, record in enumerate(records):
        param = f"records.{i}"
        if not isinstance(record, dict):
            raise LLMOSError("record_invalid", f"record {i} is not a JSON object; nothing was stored", param=param)
        if _has_nul(record):
            raise LLMOSError("record_invalid", f"record {i} contains U+0000, which records may not hold; nothing was stored", param=param)
        if validator is not None:
            error = jsonschema.exceptions.best_match(validator.iter_errors(record))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(the record)"
                raise LLMOSError("record_invalid", f"record {i} fails the dataset's schema at {where}: {error.message}; nothing was stored", param=param)
        try:
            text = dumps(record)
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise LLMOSError("record_invalid", f"record {i} holds a lone surrogate, which is not Unicode text (RFC 7493); nothing was stored", param=param) from None
        except ValueError:
            raise LLMOSError("record_invalid", f"record {i} holds a number JSON cannot carry; nothing was stored", param=param) from None
        texts.append(text)
    return texts


async def append_records(ctx: Context) -> Response:
    dataset_id = _dataset_id(ctx)
    content_type = ctx.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in JSONL_MEDIA_TYPES:
        records = _parse_jsonl(await ctx.request.body())
    else:
        raw = ctx.raw or {}
        unknown = sorted(set(raw) - {"records"})
        if unknown:
            raise LLMOSError("unsupported_parameter", f"unsupported parameter: {unknown[0]}", param=unknown[0])
        if "records" not in raw:
            raise LLMOSError("missing_required_parameter", "missing required parameter: records", param="records")
        records = raw["records"]
        if not isinstance(records, list) or not records:
            raise LLMOSError("invalid_value", "records must be a non-empty array of objects", param="records")
    store = _store(ctx)
    schema = await asyncio.to_thread(store.schema, ctx.principal, dataset_id)
    texts = _serialise(records, schema)
    version, count = await asyncio.to_thread(store.append, ctx.principal, dataset_id, texts)
    return wire_json(AppendRecordsResponse(appended=len(texts), record_count=count, version=version))


async def list_dataset_versions(ctx: Context) -> Response:
    versions = await asyncio.to_thread(_store(ctx).versions, ctx.principal, _dataset_id(ctx))
    return wire_json(DatasetVersionList(data=versions))


async def query_dataset(ctx: Context) -> Response:
    body = ctx.body
    if not isinstance(body, QueryRequest):
        raise LLMOSError("invalid_request", "unexpected body")
    dataset_id, version = _dataset_ref(ctx)
    records, cursor, read = await asyncio.to_thread(_store(ctx).query, ctx.principal, dataset_id, version, body)
    return wire_json(QueryResponse(data=records, next_cursor=cursor, version=read), headers={DATASET_VERSION_HEADER: str(read)})


_DERIVE = TypeAdapter(DeriveDatasetRequest)


def _derive_request(raw: dict[str, Any]) -> DeriveDatasetRequest:
    """Validation errors inside ``pipeline`` are the pipeline's (``pipeline_invalid``); others keep their codes."""
    try:
        request: DeriveDatasetRequest = validate_json_body(_DERIVE, raw)
        return request
    except ValidationError as exc:
        error = error_from_validation(exc)
        if error.param is not None and error.param.startswith("pipeline.") or (error.param == "pipeline" and error.code != "missing_required_parameter"):
            raise LLMOSError("pipeline_invalid", error.message, param=error.param) from None
        raise error from None


async def derive_dataset(ctx: Context) -> Response:
    body = _derive_request(ctx.raw or {})
    dataset_id, version = _dataset_ref(ctx)
    store = _store(ctx)
    source = await asyncio.to_thread(store.version, ctx.principal, dataset_id, version)
    pipeline = check_pipeline(list(body.pipeline), ctx.state.runtime)
    try:
        staging = await asyncio.to_thread(store.stage, ctx.principal, source, body.name)
    except BaseException:
        pipeline.release()
        raise
    operations: Operations = ctx.state.operations
    op = operations.start(ctx.principal, source.record_count)
    raw_pipeline = [step.model_dump(mode="json", exclude_unset=True) for step in body.pipeline]
    start_derive(store, staging, source, pipeline, raw_pipeline, op, operations, asyncio.get_running_loop(), ctx.state.settings.limits.max_prompt_tokens)
    return wire_json(operations.view(op), status=202)


async def export_dataset(ctx: Context) -> Response:
    dataset_id, version = _dataset_ref(ctx)
    store = _store(ctx)
    info = await asyncio.to_thread(store.version, ctx.principal, dataset_id, version)

    def lines() -> Iterator[bytes]:
        chunk: list[str] = []
        for _index, text in store.iter_records(info):
            chunk.append(text)
            if len(chunk) >= 500:
                yield ("\n".join(chunk) + "\n").encode()
                chunk = []
        if chunk:
            yield ("\n".join(chunk) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/jsonl", headers={DATASET_VERSION_HEADER: str(info.version)})


async def get_operation(ctx: Context) -> Response:
    operations: Operations = ctx.state.operations
    return wire_json(operations.get(ctx.principal, ctx.path("operation_id")))


HANDLERS: dict[str, Handler] = {
    "create_dataset": create_dataset,
    "list_datasets": list_datasets,
    "get_dataset": get_dataset,
    "delete_dataset": delete_dataset,
    "append_records": append_records,
    "list_dataset_versions": list_dataset_versions,
    "query_dataset": query_dataset,
    "derive_dataset": derive_dataset,
    "export_dataset": export_dataset,
    "get_operation": get_operation,
}
