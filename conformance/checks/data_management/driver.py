"""The dataset operations over the wire, each answer judged strictly (status, media type, schema, version header).

Every dataset a check creates is named ``llmos-conformance-<run>-*`` and deleted at the end of the run
by the principal that owns it. ``caller`` is a minted key's bearer header, or None for the run's key.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from llmos_std.data import DATASET_VERSION_HEADER, JSONL_MEDIA_TYPES
from llmos_std.operations import LLMOS_BASE

from conformance.context import Context
from conformance.judging import expect_status, ok_json
from conformance.verdicts import CheckFailed
from conformance.wire import Exchange

DATASETS = f"{LLMOS_BASE}/datasets"
OPERATIONS = f"{LLMOS_BASE}/operations"
MAX_PAGES = 200
"""A query that has not ended after this many pages is judged not to end."""
POLL_FIRST_S = 0.02
POLL_MAX_S = 0.5

Caller = dict[str, str] | None


def send(ctx: Context, method: str, path: str, body: Any = None, *, caller: Caller = None,
         content: bytes | None = None, content_type: str | None = None) -> Exchange:
    if caller is None:
        return ctx.wire.request(method, path, json_body=body, content=content, content_type=content_type)
    return ctx.wire.request(method, path, json_body=body, content=content, content_type=content_type, auth=None, headers=caller)


def ref(dataset_id: str, version: int | None = None) -> str:
    """``ds_x`` (the latest version) or ``ds_x@n``."""
    return dataset_id if version is None else f"{dataset_id}@{version}"


def discard(ctx: Context, dataset_id: str, caller: Caller = None) -> None:
    send(ctx, "DELETE", f"{DATASETS}/{dataset_id}", caller=caller)


def adopt(ctx: Context, dataset_id: str, caller: Caller = None) -> None:
    """Delete this dataset at the end of the run (one made by a derive)."""
    ctx.cleanup.append(functools.partial(discard, ctx, dataset_id, caller))


def create(ctx: Context, suffix: str, *, caller: Caller = None, **fields: Any) -> dict[str, Any]:
    exchange = send(ctx, "POST", DATASETS, {"name": ctx.name(suffix), **fields}, caller=caller)
    if exchange.status == 201:
        try:
            adopt(ctx, str(json.loads(exchange.body)["id"]), caller)
        except (ValueError, KeyError, TypeError):
            pass  # judged just below
    dataset: dict[str, Any] = ok_json(exchange, "Dataset", status=201)
    return dataset


def get(ctx: Context, dataset_id: str, *, caller: Caller = None) -> dict[str, Any]:
    dataset: dict[str, Any] = ok_json(send(ctx, "GET", f"{DATASETS}/{dataset_id}", caller=caller), "Dataset")
    return dataset


def listed(ctx: Context, *, caller: Caller = None) -> tuple[dict[str, str], Exchange]:
    """Every dataset the caller's listing shows (id -> name), following cursors."""
    names: dict[str, str] = {}
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        exchange = send(ctx, "GET", DATASETS + (f"?cursor={quote(cursor, safe='')}" if cursor else ""), caller=caller)
        page = ok_json(exchange, "DatasetList")
        names.update({str(d["id"]): str(d["name"]) for d in page["data"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return names, exchange
    raise CheckFailed("the dataset listing to end (next_cursor null)", f"more than {MAX_PAGES} pages")


def versions(ctx: Context, dataset_id: str, *, caller: Caller = None) -> tuple[list[dict[str, Any]], Exchange]:
    exchange = send(ctx, "GET", f"{DATASETS}/{dataset_id}/versions", caller=caller)
    return list(ok_json(exchange, "DatasetVersionList")["data"]), exchange


def append(ctx: Context, dataset_id: str, records: list[Any], *, caller: Caller = None) -> dict[str, Any]:
    exchange = send(ctx, "POST", f"{DATASETS}/{dataset_id}/records", {"records": records}, caller=caller)
    return _appended(exchange, len(records))


def append_raw(ctx: Context, dataset_id: str, content: bytes, content_type: str, *, caller: Caller = None) -> Exchange:
    return send(ctx, "POST", f"{DATASETS}/{dataset_id}/records", caller=caller, content=content, content_type=content_type)


def _line(record: Any) -> str:
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record)  # a lone surrogate goes as its escape, which is what makes the record invalid
    return text


def jsonl(records: list[Any], *, blank_lines: bool = False) -> bytes:
    """A JSON Lines body; with ``blank_lines``, CRLF line ends and blank lines (spaces, tabs, CRs) around and between the records."""
    lines = [_line(r) for r in records]
    if not blank_lines:
        return ("\n".join(lines) + "\n").encode("utf-8")
    spaced = [" \t", *(part for line in lines for part in (line + "\r", "")), "\r"]
    return "\n".join(spaced).encode("utf-8")


def append_jsonl(ctx: Context, dataset_id: str, records: list[Any], *, blank_lines: bool = False) -> dict[str, Any]:
    exchange = append_raw(ctx, dataset_id, jsonl(records, blank_lines=blank_lines), "application/jsonl")
    return _appended(exchange, len(records))


def _appended(exchange: Exchange, count: int) -> dict[str, Any]:
    answer: dict[str, Any] = ok_json(exchange, "AppendRecordsResponse")
    if answer["appended"] != count:
        raise CheckFailed(f"appended: {count} (the records sent)", repr(answer["appended"]), exchange=exchange)
    return answer


def version_header(exchange: Exchange, version: int | None = None) -> int:
    """The ``LLMOS-Dataset-Version`` header: a version number, equal to ``version`` when given."""
    header = exchange.headers.get(DATASET_VERSION_HEADER)
    if header is None or not header.isdigit() or int(header) < 1 or (version is not None and int(header) != version):
        want = str(version) if version is not None else "the version read"
        raise CheckFailed(f"{DATASET_VERSION_HEADER}: {want}", repr(header), exchange=exchange)
    return int(header)


def query_page(ctx: Context, dataset_ref: str, body: dict[str, Any], *, caller: Caller = None) -> tuple[Exchange, dict[str, Any]]:
    exchange = send(ctx, "POST", f"{DATASETS}/{dataset_ref}/query", body, caller=caller)
    page: dict[str, Any] = ok_json(exchange, "QueryResponse")
    version_header(exchange, page["version"])
    limit = body.get("limit", 100)
    if len(page["data"]) > limit:
        raise CheckFailed(f"at most limit={limit} records on a page", f"{len(page['data'])}", exchange=exchange)
    return exchange, page


@dataclass
class Pass:
    """One query read to its end: every ``(index, record)``, the version it read, the pages."""

    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    version: int = 0
    pages: list[Exchange] = field(default_factory=list)

    @property
    def last(self) -> Exchange:
        return self.pages[-1]


def query_all(ctx: Context, dataset_ref: str, body: dict[str, Any], *, caller: Caller = None, between: Any = None) -> Pass:
    """Follow ``next_cursor`` to the end; ``between(pages_so_far)`` runs before each further page."""
    exchange, page = query_page(ctx, dataset_ref, body, caller=caller)
    read = Pass(version=page["version"], pages=[exchange])
    seen: set[int] = set()
    while True:
        for record in page["data"]:
            if record["index"] in seen:
                raise CheckFailed("each matching record exactly once across the pages", f"index {record['index']} again on page {len(read.pages)}", exchange=exchange)
            seen.add(record["index"])
            read.rows.append((record["index"], record["data"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return read
        if len(read.pages) >= MAX_PAGES:
            raise CheckFailed("the pages to end with next_cursor null", f"still a cursor after {MAX_PAGES} pages", exchange=exchange)
        if between is not None:
            between(len(read.pages))
        exchange, page = query_page(ctx, dataset_ref, {**body, "cursor": cursor}, caller=caller)
        read.pages.append(exchange)
        if page["version"] != read.version:
            raise CheckFailed(f"every page reading version {read.version}, the one the first page read", f"page {len(read.pages)} read version {page['version']}", exchange=exchange)


def loose_white_space(line: str) -> int | None:
    """The position of the first white space outside strings in a JSON text (compact JSON has none), or None."""
    in_string = escaped = False
    for position, char in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in " \t\r\n":
            return position
    return None


def export(ctx: Context, dataset_ref: str, *, caller: Caller = None) -> tuple[Exchange, list[dict[str, Any]]]:
    """The export as JSON Lines: each record compact JSON followed by a line feed, the last too; the version header present."""
    exchange = send(ctx, "GET", f"{DATASETS}/{dataset_ref}/export", caller=caller)
    expect_status(exchange, 200)
    content_type = exchange.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in JSONL_MEDIA_TYPES:
        raise CheckFailed("Content-Type application/jsonl", repr(content_type), exchange=exchange)
    version_header(exchange)
    try:
        text = exchange.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckFailed("JSON Lines in UTF-8", str(exc), exchange=exchange) from None
    if text and not text.endswith("\n"):
        raise CheckFailed("every record followed by a line feed, the last one too", f"the body ends with {text[-40:]!r}", exchange=exchange)
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.split("\n")[:-1], 1):
        try:
            value = json.loads(line) if line.strip() else None
        except ValueError as exc:
            raise CheckFailed("one JSON record per line", f"line {number} does not parse ({exc}): {line[:120]!r}", exchange=exchange) from None
        if not isinstance(value, dict):
            raise CheckFailed("one JSON object per line, one line per record", f"line {number} is {line[:120]!r}", exchange=exchange)
        loose = loose_white_space(line)
        if loose is not None:
            raise CheckFailed("each record as compact JSON (no white space outside strings)", f"line {number}: {line[max(0, loose - 30):loose + 30]!r}", exchange=exchange)
        records.append(value)
    return exchange, records


def derive(ctx: Context, dataset_ref: str, pipeline: list[Any], *, name: str | None = None, caller: Caller = None) -> tuple[Exchange, dict[str, Any]]:
    """POST derive: 202 with a DataOperation (not yet settled)."""
    body: dict[str, Any] = {"pipeline": pipeline}
    if name is not None:
        body["name"] = name
    exchange = send(ctx, "POST", f"{DATASETS}/{dataset_ref}/derive", body, caller=caller)
    operation: dict[str, Any] = ok_json(exchange, "DataOperation", status=202)
    return exchange, operation


def settle(ctx: Context, operation: dict[str, Any], exchange: Exchange, *, caller: Caller = None) -> tuple[dict[str, Any], Exchange]:
    """Poll the operation until it has succeeded or failed; every answer is judged, and a settled one never changes back."""
    deadline = time.monotonic() + ctx.settings.timeout
    delay = POLL_FIRST_S
    current, last = operation, exchange
    _judge_operation(current, last)
    while current["status"] == "running":
        if time.monotonic() > deadline:
            raise CheckFailed(f"the derive operation settling within {ctx.settings.timeout:.0f} s", "still running", exchange=last)
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX_S)
        last = send(ctx, "GET", f"{OPERATIONS}/{operation['id']}", caller=caller)
        polled: dict[str, Any] = ok_json(last, "DataOperation")
        if polled["id"] != operation["id"] or polled["kind"] != "derive":
            raise CheckFailed(f"operation {operation['id']} (a derive)", f"{polled['id']} ({polled['kind']})", exchange=last)
        _judge_operation(polled, last)
        current = polled
    return current, last


def _judge_operation(operation: dict[str, Any], exchange: Exchange) -> None:
    progress = operation["progress"]
    if progress["records_done"] > progress["records_total"]:
        raise CheckFailed("progress.records_done <= records_total", repr(progress), exchange=exchange)
    if operation["updated"] < operation["created"]:
        raise CheckFailed("updated no earlier than created", f"created {operation['created']}, updated {operation['updated']}", exchange=exchange)
    status = operation["status"]
    if status == "succeeded" and (operation.get("result") is None or operation.get("error") is not None):
        raise CheckFailed("a succeeded operation naming the version it created (result) and no error", repr({k: operation.get(k) for k in ("result", "error")}), exchange=exchange)
    if status == "failed" and (operation.get("error") is None or operation.get("result") is not None):
        raise CheckFailed("a failed operation carrying its error and no result", repr({k: operation.get(k) for k in ("result", "error")}), exchange=exchange)
    if status == "running" and operation.get("result") is not None:
        raise CheckFailed("no result while running", repr(operation.get("result")), exchange=exchange)


def derived(ctx: Context, dataset_ref: str, pipeline: list[Any], *, name: str | None = None, caller: Caller = None) -> tuple[dict[str, Any], Exchange]:
    """A derive that must succeed: the ``{dataset_id, version}`` it created (a new dataset is deleted at the end)."""
    exchange, operation = derive(ctx, dataset_ref, pipeline, name=name, caller=caller)
    final, last = settle(ctx, operation, exchange, caller=caller)
    if final["status"] != "succeeded":
        raise CheckFailed(f"the derive {json.dumps(pipeline)[:200]} succeeding", f"it failed: {final['error']}", exchange=last)
    result: dict[str, Any] = final["result"]
    if name is not None:
        adopt(ctx, str(result["dataset_id"]), caller)
    return result, exchange
