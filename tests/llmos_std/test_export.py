"""The generated OpenAPI document and JSON Schemas are valid and say what the design promises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from llmos_std.errors import ERROR_CODES
from llmos_std.export import ExportError, openapi_document, render_template, schema_files
from llmos_std.operations import OPERATIONS, error_codes

SCHEMAS = schema_files()


def test_openapi_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_openapi_never_uses_nullable_and_uses_type_arrays() -> None:
    nodes = _walk(openapi_document())
    assert not any("nullable" in node for node in nodes)
    assert any(isinstance(node.get("type"), list) and "null" in node["type"] for node in nodes)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_passes_the_2020_12_meta_schema(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/schemas/{name}")
    jsonschema.Draft202012Validator.check_schema(schema)


def _def(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema if schema.get("title") == name else schema["$defs"][name]


# Each row: a response schema and the fields the design says clients can rely on being present.
@pytest.mark.parametrize(
    ("schema", "definition", "fields"),
    [
        ("ChatCompletionResponse.json", "ChatCompletionResponse", {"id", "object", "created", "choices", "usage"}),
        ("ChatCompletionResponse.json", "ChatChoice", {"index", "finish_reason", "message"}),
        ("CompletionResponse.json", "CompletionChoice", {"index", "finish_reason", "text"}),
        ("ChatCompletionChunk.json", "ChatCompletionChunk", {"id", "object", "created", "choices"}),
        ("ChatCompletionChunk.json", "ChatChunkChoice", {"index", "finish_reason", "delta"}),
        ("EmbeddingResponse.json", "Embedding", {"index", "object", "embedding"}),
        ("ModelList.json", "ModelObject", {"id", "object", "created", "owned_by", "capabilities", "digest", "state", "determinism"}),
    ],
)
def test_response_schemas_require_their_defaulted_fields(schema: str, definition: str, fields: set[str]) -> None:
    assert fields <= set(_def(SCHEMAS[schema], definition)["required"])


def test_every_operation_documents_every_error_status_with_the_envelope() -> None:
    document = openapi_document()
    for op in OPERATIONS:
        responses = document["paths"][op.path][op.method.lower()]["responses"]
        assert str(op.status) in responses
        for code in error_codes(op):
            response = responses[str(ERROR_CODES[code].status)]
            assert f"`{code}`" in response["description"]
            if op.method != "HEAD":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}


def test_streaming_operations_document_their_events() -> None:
    document = openapi_document()
    for op in OPERATIONS:
        if op.stream_chunk is None:
            continue
        media = document["paths"][op.path]["post"]["responses"]["200"]["content"]["text/event-stream"]
        done, data = media["schema"]["properties"]["data"]["anyOf"]
        chunk, error = data["contentSchema"]["oneOf"]
        assert chunk["$ref"].endswith(op.stream_chunk.__name__) and data["contentMediaType"] == "application/json"
        assert error == {"$ref": "#/components/schemas/ErrorEnvelope"} and done["const"] == "[DONE]"


def test_templates_fail_on_unknown_requirements_and_tables() -> None:
    with pytest.raises(ExportError):
        render_template("{{req:LLMOS-NOPE-999}}", {})
    with pytest.raises(ExportError):
        render_template("{{table:nope}}", {})


def test_export_writes_files_atomically_and_drops_stale_schemas(tmp_path: Path) -> None:
    from llmos_std.export import export

    spec_src = Path(__file__).resolve().parents[2] / "spec" / "src"
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "Gone.json").write_text("{}")
    written = export(tmp_path, templates=spec_src)
    assert not (tmp_path / "schemas" / "Gone.json").exists()
    assert (tmp_path / "openapi.json") in written
    assert not list(tmp_path.rglob("*.tmp"))
    json.loads((tmp_path / "requirements.json").read_text())
