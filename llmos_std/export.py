"""Generates ``spec/`` from the package: OpenAPI 3.1, JSON Schemas, requirements.json, rendered prose.

Output is deterministic (sorted keys, fixed indentation, no timestamps) so that a drift test can
compare a fresh export with the committed files byte for byte.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from llmos_std import STANDARD_VERSION, query
from llmos_std.discovery import DiscoveryDocument
from llmos_std.errors import ERROR_CODES, ErrorEnvelope
from llmos_std.examples import OperationExample, error_example, operation_examples
from llmos_std.models import ModelObject
from llmos_std.operations import MODEL_DIGEST_HEADER, OPERATIONS, PATH_PARAMS, REQUEST_ID_HEADER, VERSION_HEADER, Operation, error_codes
from llmos_std.parameters import DISPOSITIONS
from llmos_std.pipeline import PII_KINDS, PII_PATTERNS, PII_PLACEHOLDERS, WHITE_SPACE, PipelineStep
from llmos_std.pipeline_examples import WORKED_EXAMPLES
from llmos_std.profiles import PROFILE_DEPENDS, PROFILE_SUMMARY, PROFILES
from llmos_std.report import ConformanceReport
from llmos_std.requirements import REQUIREMENTS, REQUIREMENTS_BY_ID
from llmos_std.structured import STRICT_FORMATS, STRICT_SUBSET
from llmos_std.tasks import DEFAULT_OUTPUT_PREFIXES, DEFAULT_PROMPTS, LANGUAGE_NAMES, TASK_NAMES

SCHEMA_BASE = f"https://schemas.llmos-std.org/{STANDARD_VERSION}/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
Mode = Literal["validation", "serialization"]

_PLACEHOLDER = re.compile(r"{{\s*(req|table):([A-Za-z0-9_-]+)\s*}}")


class ExportError(Exception):
    """A template or table problem that makes the spec unrenderable."""


# ---------------------------------------------------------------- schema helpers


def _to_type_arrays(node: Any) -> Any:
    """Rewrite ``anyOf: [{type: X}, {type: null}]`` as ``type: [X, "null"]`` (pure 2020-12 / OAS 3.1)."""
    if isinstance(node, list):
        return [_to_type_arrays(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _to_type_arrays(value) for key, value in node.items()}
    variants = node.get("anyOf")
    if isinstance(variants, list) and len(variants) == 2 and {"type": "null"} in variants:
        other = next(v for v in variants if v != {"type": "null"})
        if isinstance(other.get("type"), str) and "$ref" not in other and "enum" not in other and "const" not in other:
            merged = {key: value for key, value in node.items() if key != "anyOf"}
            merged.update(other)
            merged["type"] = [other["type"], "null"]
            return merged
    return node


def _without_null_defaults(node: Any) -> Any:
    """Drop ``default: null``: it says no more than "optional", and generators read any default as
    "the server fills it in", typing optional request fields as required (openapi-typescript does)."""
    if isinstance(node, list):
        return [_without_null_defaults(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: _without_null_defaults(value) for key, value in node.items() if not (key == "default" and value is None)}


def _clean(node: Any) -> Any:
    return _without_null_defaults(_to_type_arrays(node))


def _model_modes() -> list[tuple[type[BaseModel], Mode]]:
    """Every wire model the standard names, with the direction it travels in."""
    pairs: dict[tuple[str, Mode], tuple[type[BaseModel], Mode]] = {}

    def add(model: type[BaseModel] | None, mode: Mode) -> None:
        if model is not None:
            pairs.setdefault((model.__name__, mode), (model, mode))

    for op in OPERATIONS:
        add(op.request, "validation")
    requested = {model.__name__ for (model, _mode) in pairs.values()}
    for op in OPERATIONS:
        if op.response is not None and op.response.__name__ not in requested:
            add(op.response, "serialization")
        if op.stream_chunk is not None:
            add(op.stream_chunk, "serialization")
    for model in (ErrorEnvelope, ModelObject, DiscoveryDocument, ConformanceReport):
        add(model, "serialization")
    return sorted(pairs.values(), key=lambda pair: pair[0].__name__)


def schema_files() -> dict[str, dict[str, Any]]:
    """``schemas/<Model>.json`` documents: self-contained, 2020-12, each with an ``$id``."""
    files: dict[str, dict[str, Any]] = {}
    for model, mode in _model_modes():
        schema = _clean(model.model_json_schema(mode=mode))
        name = f"{model.__name__}.json"
        files[name] = {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_BASE + "schemas/" + name, **schema}
    return files


# ---------------------------------------------------------------- OpenAPI


def _common_headers() -> dict[str, Any]:
    return {VERSION_HEADER: {"$ref": f"#/components/headers/{VERSION_HEADER}"}, REQUEST_ID_HEADER: {"$ref": f"#/components/headers/{REQUEST_ID_HEADER}"}}


def _envelope_response(op: Operation, status: int, codes: list[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    response: dict[str, Any] = {"description": f"Error envelope; `code` is one of {listed}.", "headers": _common_headers(), "x-llmos-error-codes": codes}
    if op.method != "HEAD":
        response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"},
                                                     "examples": {codes[0]: {"value": error_example(codes[0])}}}}
    if status == 401 or "insufficient_scope" in codes:
        response["headers"]["WWW-Authenticate"] = {"description": "RFC 6750 challenge (`error=\"invalid_token\"` or `\"insufficient_scope\"`).", "schema": {"type": "string"}}
    if status in (429, 503):
        response["headers"]["Retry-After"] = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
    if status == 405:
        response["headers"]["Allow"] = {"description": "The methods the path allows (RFC 9110).", "schema": {"type": "string"}}
    return response


def _operation_object(op: Operation, names: dict[tuple[str, Mode], str]) -> dict[str, Any]:
    def ref(model: type[BaseModel], mode: Mode) -> dict[str, str]:
        return {"$ref": "#/components/schemas/" + names[(model.__name__, mode)]}

    example = operation_examples().get(op.id)
    if example is None:
        raise ExportError(f"operation {op.id} has no example in llmos_std/example_data/operations.json")
    success: dict[str, Any] = {"description": op.summary, "headers": _common_headers()}
    if op.names_serving_model:
        success["headers"][MODEL_DIGEST_HEADER] = {"$ref": f"#/components/headers/{MODEL_DIGEST_HEADER}"}
    if op.response is not None and op.method != "HEAD":
        mode: Mode = "validation" if (op.response.__name__, "validation") in names else "serialization"
        success["content"] = {"application/json": {"schema": ref(op.response, mode), "examples": _examples(op.id, example.response, example.note)}}
    elif op.response_body == "json" and op.method != "HEAD":
        success["content"] = {"application/json": {"schema": {"type": "object", "description": "A JSON document (see the summary)."},
                                                   "examples": _examples(op.id, example.response, example.note)}}
    if op.response_body == "bytes":
        success["headers"].update(_BLOB_HEADERS)
        success["content"] = {"application/octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream", "description": "The blob's exact bytes."},
            "examples": _examples(op.id, example.response_text, "The blob's bytes, here a small JSON file."),
        }}
    if op.response_body == "jsonl":
        success["content"] = {"application/jsonl": {
            "schema": {"type": "array", "items": {"type": "object"}, "description": _JSONL_BODY},
            "examples": _examples(op.id, [json.loads(line) for line in (example.response_text or "").splitlines() if line.strip()], None),
        }}
    if op.stream_chunk is not None:
        events = [*(_sse_event(event) for event in example.stream or []), {"data": "[DONE]"}]
        success.setdefault("content", {})["text/event-stream"] = {
            "schema": {
                "description": _SSE_BODY,
                "type": "object",
                "required": ["data"],
                "properties": {
                    "event": {"type": "string", "description": "Sent by `/v1/responses` streams: the type of the event's data."},
                    "data": {"anyOf": [
                        {"const": "[DONE]", "description": "The last event."},
                        {"type": "string", "contentMediaType": "application/json",
                         "contentSchema": {"oneOf": [ref(op.stream_chunk, "serialization"), {"$ref": "#/components/schemas/ErrorEnvelope"}]}},
                    ]},
                },
            },
            "examples": {f"{op.id}_event_{i:02d}": {"summary": f"Event {i + 1} of {len(events)} of one stream.", "value": event} for i, event in enumerate(events)},
        }
    responses: dict[str, Any] = {str(op.status): success}
    by_status: dict[int, list[str]] = {}
    for code in error_codes(op):
        by_status.setdefault(ERROR_CODES[code].status, []).append(code)
    for status in sorted(by_status):
        responses[str(status)] = _envelope_response(op, status, by_status[status])
    for status, model, description in op.extra_responses:
        responses[str(status)] = {"description": description, "headers": _common_headers(), "content": {"application/json": {
            "schema": ref(model, "serialization"), "examples": _examples(f"{op.id}_{status}", example.responses.get(str(status)), None)}}}

    obj: dict[str, Any] = {
        "operationId": op.id,
        "summary": op.summary,
        "description": _description(op),
        "tags": [op.profile],
        "responses": responses,
        "x-llmos-profile": op.profile,
        "x-llmos-requirements": list(op.requirements),
        "x-llmos-scope": op.scope,
        "x-llmos-mutating": op.mutating,
    }
    if op.path_params:
        obj["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string", "pattern": f"^{PATH_PARAMS[p]}$"}, "example": _path_example(op, example, p)}
            for p in op.path_params
        ]
    if op.paged:
        obj["parameters"] = [*obj.get("parameters", []), *_PAGE_PARAMETERS]
    obj["security"] = [{"bearer": []}] if op.scope is not None else []
    if op.request_body == "json" and op.request is not None:
        examples = _examples(op.id, example.request, None)
        if example.stream_request is not None:
            examples[f"{op.id}_stream"] = {"summary": "The same request, streamed.", "value": example.stream_request}
        obj["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(op.request, "validation"), "examples": examples}}}
        if op.request_jsonl:
            # OpenAPI 3.1 cannot give each line a schema (3.2's itemSchema can); the JSON form's list items are the lines.
            obj["requestBody"]["content"]["application/jsonl"] = {
                "schema": {"type": "string", "contentMediaType": "application/jsonl",
                           "description": "JSON Lines: each non-blank line is one element of the JSON form's list."},
                "examples": _examples(f"{op.id}_jsonl", _jsonl_of(example.request), None),
            }
    elif op.request_body == "bytes":
        obj["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"},
                                                     "examples": _examples(op.id, example.body_text, "The blob's bytes, here a small JSON file.")}},
        }
    return obj


_SSE_BODY = ("Server-sent events, one `data:` line each: a chunk, or an error envelope after which the stream ends, "
             "and last the literal `[DONE]`. The schema describes one event as OpenAPI 3.2 does (an object whose `data` "
             "holds the event's text, its JSON described by `contentMediaType` and `contentSchema`), placed under `schema` "
             "because the generators this document targets read 3.1, where 3.2 puts it under `itemSchema`.")
_PAGE_PARAMETERS = (
    {"name": "limit", "in": "query", "required": False, "description": "Items per page.",
     "schema": {"type": "integer", "minimum": 1, "maximum": query.MAX_PAGE_SIZE, "default": 100}, "example": 100},
    {"name": "cursor", "in": "query", "required": False, "description": "The `next_cursor` of the previous page; absent for the first page.",
     "schema": {"type": "string", "minLength": 1, "maxLength": 4096}, "example": "ZHNfMGFmNGU3Y2RhOWNmY2U0MTVkZTY"},
)
_BLOB_HEADERS = {
    "Content-Length": {"description": "The blob's size in bytes.", "schema": {"type": "integer", "minimum": 0}},
    "ETag": {"description": "The blob's digest in quotes: `\"sha256:<hex>\"`.", "schema": {"type": "string", "pattern": '^"sha256:[0-9a-f]{64}"$'}},
}
_JSONL_BODY = "JSON Lines: one record per line, in index order; described as the list of the lines' values."


def _examples(name: str, value: Any, summary: str | None) -> dict[str, Any]:
    if value is None:
        raise ExportError(f"{name}: the example lacks this part")
    return {name: {"value": value, **({"summary": summary} if summary else {})}}


def _sse_event(payload: Any) -> dict[str, str]:
    """An example event as the stream sends it; Responses events carry their type on an ``event:`` line too."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    kind = payload.get("type") if isinstance(payload, dict) else None
    return {"event": kind, "data": data} if isinstance(kind, str) and "." in kind else {"data": data}


def _jsonl_of(request: Any) -> str:
    """The JSON Lines form of a request whose one list field holds the lines."""
    lists = [value for value in (request or {}).values() if isinstance(value, list)]
    if len(lists) != 1:
        raise ExportError("a JSON Lines request needs exactly one list field")
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in lists[0])


def _path_example(op: Operation, example: OperationExample, param: str) -> str:
    value = example.path.get(param)
    if value is None:
        raise ExportError(f"{op.id}: no example value for path parameter {param}")
    return value


def _description(op: Operation) -> str:
    """The operation's summary and the normative sentences of its requirements, from the registry."""
    lines = [op.summary, "", "Requirements:"]
    lines += [f"- **{rid}** ({REQUIREMENTS_BY_ID[rid].level}): {REQUIREMENTS_BY_ID[rid].sentence}" for rid in op.requirements if rid in REQUIREMENTS_BY_ID]
    return "\n".join(lines)


def openapi_document() -> dict[str, Any]:
    pairs = _model_modes()
    _, definitions = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = _clean(definitions.get("$defs", {}))
    for key, schema in components.items():
        if key.endswith(("-Input", "-Output")) and isinstance(schema, dict):
            # Generators name classes by title: the two modes of one model need two names (AndInput, AndOutput).
            schema["title"] = key.replace("-", "")
    # models_json_schema names a model used in both modes "<Name>-Input"/"-Output"; map each pair to its name.
    names: dict[tuple[str, Mode], str] = {}
    for model, mode in pairs:
        for candidate in (model.__name__, f"{model.__name__}-{'Input' if mode == 'validation' else 'Output'}"):
            if candidate in components:
                names[(model.__name__, mode)] = candidate
                break
        else:
            raise ExportError(f"no component schema for {model.__name__} ({mode})")
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation_object(op, names)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": {
            "title": "LLMOS",
            "version": STANDARD_VERSION,
            "summary": "An open standard for LLM operating systems, wire-compatible with the OpenAI API.",
            "description": ("The LLMOS API: OpenAI-compatible inference under `/v1/`, LLMOS extensions under `/llmos/v1/`. "
                            "A server claims profiles in `GET /.well-known/llmos`; every operation belongs to one profile (its tag), "
                            "needs the scope in `x-llmos-scope`, and is governed by the requirements in `x-llmos-requirements`. "
                            "Errors use one envelope; `x-llmos-error-codes` lists the codes each response can carry."),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "http://127.0.0.1:8400", "description": "the reference server's default address (`llmos-ref serve`)"}],
        "tags": [{"name": p, "description": PROFILE_SUMMARY[p]} for p in PROFILES],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An LLMOS API key."}},
            "headers": {
                VERSION_HEADER: {"description": "The standard version the server implements.", "schema": {"type": "string", "pattern": r"^\d+\.\d+$"}},
                MODEL_DIGEST_HEADER: {"description": "Package digest of the model that served the request.", "schema": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}},
                REQUEST_ID_HEADER: {"description": "The request's id: the client's own when well-formed, else the server's; also in audit events.", "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}},
            },
        },
    }


def effective_openapi(*, keys_required: bool, server_url: str | None = None) -> dict[str, Any]:
    """The document a running server serves about itself: the standard's, with ``security`` as configured.

    A keyless server must not tell generic tools that they need a key (nor a keyed one the reverse):
    without keys every operation's ``security`` is empty and no 401 is documented.
    """
    document = copy.deepcopy(_standard_openapi())
    if server_url is not None:
        document["servers"] = [{"url": server_url}]
    if not keys_required:
        for item in document["paths"].values():
            for operation in item.values():
                operation["security"] = []
                operation["responses"].pop("401", None)
        document["components"].pop("securitySchemes", None)
    return document


@cache
def _standard_openapi() -> dict[str, Any]:
    return openapi_document()


# ---------------------------------------------------------------- prose


def _md_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines.extend("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def _tables() -> dict[str, str]:
    return {
        "errors": _md_table(
            ("code", "status", "type", "section", "meaning"),
            ((f"`{c.code}`", str(c.status), f"`{c.type}`", c.section, c.description) for c in ERROR_CODES.values()),
        ),
        "operations": _md_table(
            ("operation", "method", "path", "profile", "scope", "requirements"),
            ((f"`{o.id}`", o.method, f"`{o.path}`", o.profile, f"`{o.scope}`" if o.scope else "none", ", ".join(o.requirements)) for o in OPERATIONS),
        ),
        "dispositions": _md_table(
            ("operation", "field", "disposition", "effect"),
            ((f"`{d.operation}`", f"`{d.field}`", d.disposition, d.effect) for d in DISPOSITIONS),
        ),
        "profiles": _md_table(
            ("profile", "implies", "covers"),
            ((f"`{p}`", ", ".join(f"`{d}`" for d in PROFILE_DEPENDS[p]) or "-", PROFILE_SUMMARY[p]) for p in PROFILES),
        ),
        "task-prompts": _task_prompts(),
        "task-languages": _md_table(("primary subtag", "name"), ((f"`{tag}`", name) for tag, name in sorted(LANGUAGE_NAMES.items()))),
        "white-space": _md_table(("code point", "name"), ((f"U+{ord(c):04X}", _char_name(c)) for c in sorted(WHITE_SPACE))),
        "pii-patterns": _pii_patterns(),
        "query-bounds": _md_table(
            ("bound", "value"),
            (
                ("records per page (`limit`)", f"1 to {query.MAX_PAGE_SIZE}"),
                ("filter depth (a leaf is 1; each `and`, `or`, `not` above it adds 1)", str(query.MAX_FILTER_DEPTH)),
                ("filter nodes (every operator object counts)", str(query.MAX_FILTER_NODES)),
                ("children of one `and` or `or`", f"1 to {query.MAX_FILTER_CHILDREN}"),
                ("`values` of one `in`", f"1 to {query.MAX_IN_VALUES}"),
                ("sort keys", str(query.MAX_SORT_KEYS)),
                ("projected `fields`", f"1 to {query.MAX_PROJECTION}"),
                ("names in a field path; characters per name", "1 to 8; 1 to 128"),
                ("`cursor` length", "1 to 4096 characters"),
            ),
        ),
        "pipeline-examples": _pipeline_examples(),
        "strict-subset": _md_table(
            ("keyword", "in the subset"),
            [(f"`{k}`", "yes") for k in sorted(STRICT_SUBSET) if k != "format"]
            + [("`format`", ", ".join(f"`{f}`" for f in sorted(STRICT_FORMATS)))],
        ),
    }


def _task_prompts() -> str:
    parts = []
    for task in TASK_NAMES:
        parts.append(f"`{task}`, output prefix `{DEFAULT_OUTPUT_PREFIXES[task]}`:\n\n```text\n{DEFAULT_PROMPTS[task]}\n```")
    return "\n\n".join(parts)


_CONTROL_NAMES = {"\t": "CHARACTER TABULATION", "\n": "LINE FEED", "\v": "LINE TABULATION", "\f": "FORM FEED", "\r": "CARRIAGE RETURN", "\x85": "NEXT LINE"}


def _char_name(char: str) -> str:
    return _CONTROL_NAMES.get(char) or unicodedata.name(char)


def _pii_patterns() -> str:
    parts = []
    for position, kind in enumerate(PII_KINDS, start=1):
        parts.append(f"{position}. `{kind}`, replaced by `{PII_PLACEHOLDERS[kind]}`:\n\n   ```text\n   {PII_PATTERNS[kind]}\n   ```")
    return "\n\n".join(parts)


_INVISIBLE = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Me", "Mn", "Zl", "Zp", "Zs"})


def _visible_json(value: Any) -> str:
    """Compact JSON, UTF-8 as written, except that invisible and combining characters are ``\\u`` escapes."""
    out = []
    for char in json.dumps(value, ensure_ascii=False, separators=(",", ":")):
        if char != " " and unicodedata.category(char) in _INVISIBLE:
            code = ord(char)
            units = [code] if code < 0x10000 else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
            out.append("".join(f"\\u{unit:04x}" for unit in units))
        else:
            out.append(char)
    return "".join(out)


def _pipeline_examples() -> str:
    adapter: TypeAdapter[Any] = TypeAdapter(PipelineStep)
    parts = []
    for number, example in enumerate(WORKED_EXAMPLES, start=1):
        model = type(adapter.validate_python(example.step)).__name__
        step = json.dumps(example.step, ensure_ascii=False)
        records_in = "\n".join(_visible_json(r) for r in example.records_in)
        records_out = "\n".join(_visible_json(r) for r in example.records_out) or "(none)"
        parts.append(
            f"#### Example {number}: {example.title}\n\n"
            f"```json DeriveDatasetRequest#/$defs/{model}\n{step}\n```\n\n"
            f"Records in:\n\n```jsonl\n{records_in}\n```\n\n"
            f"Records out:\n\n```jsonl\n{records_out}\n```"
        )
    return "\n\n".join(parts)


def render_requirement(req_id: str) -> str:
    req = REQUIREMENTS_BY_ID.get(req_id)
    if req is None:
        raise ExportError(f"template names unknown requirement {req_id}")
    status = f"; deprecated in {req.deprecated}" if req.deprecated else ""
    surface = "OpenAI wire" if req.surface == "openai-wire" else "LLMOS addition"
    return f"<a id=\"{req.id}\"></a>**{req.id}** ({req.level}, `{req.profile}`, {surface}, since {req.since}{status}): {req.sentence}"


def render_template(text: str, tables: dict[str, str]) -> tuple[str, list[str]]:
    """Fill placeholders; returns the rendered text and the requirement ids it placed."""
    placed: list[str] = []

    def fill(match: re.Match[str]) -> str:
        kind, key = match.group(1), match.group(2)
        if kind == "req":
            placed.append(key)
            return render_requirement(key)
        if key not in tables:
            raise ExportError(f"unknown table {key!r}")
        return tables[key]

    return _PLACEHOLDER.sub(fill, text), placed


def render_prose(templates: Path) -> dict[str, str]:
    tables = _tables()
    rendered: dict[str, str] = {}
    placed: list[str] = []
    for template in sorted(templates.glob("*.md")):
        text, ids = render_template(template.read_text(encoding="utf-8"), tables)
        rendered[template.name] = text
        placed.extend(ids)
    duplicates = sorted({i for i in placed if placed.count(i) > 1})
    missing = sorted(set(REQUIREMENTS_BY_ID) - set(placed))
    if duplicates or missing:
        raise ExportError(f"each requirement must be placed exactly once; duplicated: {duplicates}, missing: {missing}")
    return rendered


# ---------------------------------------------------------------- files


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files(templates: Path) -> dict[str, str]:
    """Relative path -> content of every generated file."""
    files: dict[str, str] = {"openapi.json": _json_text(openapi_document())}
    for name, schema in schema_files().items():
        files[f"schemas/{name}"] = _json_text(schema)
    files["requirements.json"] = _json_text(
        {"standard_version": STANDARD_VERSION, "requirements": [req.model_dump(mode="json") for req in REQUIREMENTS]}
    )
    for name, text in render_prose(templates).items():
        files[name] = text
    return files


def export(out: Path, templates: Path | None = None) -> list[Path]:
    """Write every generated file under ``out`` (templates default to ``out/src``); returns what it wrote."""
    files = generated_files(templates or out / "src")
    written: list[Path] = []
    stale = set((out / "schemas").glob("*.json")) if (out / "schemas").is_dir() else set()
    for rel, content in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
        stale.discard(path)
        written.append(path)
    for path in stale:
        path.unlink()
    return written
