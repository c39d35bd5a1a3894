"""Spec lint: the committed OpenAPI document is complete for generic tools (issue 11, item 6).

Every operation has a unique operationId, its profile as tag, a summary, a description drawn from
the registry, examples for its request and every response with a body, and the error responses the
operation table names; every example validates against the schema beside it. The generators' own
warnings are judged in test_python_stubs.py and test_typescript_stubs.py, which run them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from llmos_std.errors import ERROR_CODES
from llmos_std.operations import OPERATIONS, OPERATIONS_BY_ID, error_codes

DOCUMENT: dict[str, Any] = json.loads((Path(__file__).resolve().parent.parent / "spec" / "openapi.json").read_text(encoding="utf-8"))
METHODS = ("get", "head", "post", "put", "delete")


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _media(operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, media type object) for the request body and every response body."""
    for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
        yield f"request {media_type}", media
    for status, response in operation["responses"].items():
        for media_type, media in response.get("content", {}).items():
            yield f"{status} {media_type}", media


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    root = {"$ref": "#/x-target", "x-target": schema, "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def test_every_operation_of_the_table_is_documented_once_with_a_unique_id() -> None:
    ids = [operation["operationId"] for _, _, operation in _operations()]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(op.id for op in OPERATIONS)


@pytest.mark.parametrize(("path", "method", "operation"), list(_operations()), ids=[o["operationId"] for _, _, o in _operations()])
def test_operation_is_complete(path: str, method: str, operation: dict[str, Any]) -> None:
    op = OPERATIONS_BY_ID[operation["operationId"]]
    assert operation["tags"] == [op.profile]
    assert operation["summary"] and operation["description"].startswith(operation["summary"])
    assert all(rid in operation["description"] for rid in op.requirements), "the description quotes every requirement"
    documented = sorted(code for r in operation["responses"].values() for code in r.get("x-llmos-error-codes", []))
    assert documented == sorted(error_codes(op))
    for status, response in operation["responses"].items():
        for code in response.get("x-llmos-error-codes", []):
            assert ERROR_CODES[code].status == int(status), f"{code} documented under {status}"
    for parameter in operation.get("parameters", []):
        assert "example" in parameter, parameter["name"]
        errors = list(_validator(parameter["schema"]).iter_errors(parameter["example"]))
        assert errors == [], (parameter["name"], errors)
    if op.paged:
        assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {"limit", "cursor"}
    media = list(_media(operation))
    assert method == "head" or media, "every operation but HEAD has a body to show"
    for where, item in media:
        assert item.get("examples"), f"{where} has no example"


@pytest.mark.parametrize(("path", "method", "operation"), list(_operations()), ids=[o["operationId"] for _, _, o in _operations()])
def test_every_example_validates_against_its_schema(path: str, method: str, operation: dict[str, Any]) -> None:
    for where, media in _media(operation):
        validator = _validator(media["schema"])
        for name, example in media.get("examples", {}).items():
            errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(example["value"])]
            assert errors == [], f"{where} example {name}: {errors[:3]}"


def test_stream_examples_are_chunks_of_their_operation() -> None:
    """Each event's data is JSON valid against the chunk schema, or the final [DONE] (contentSchema is only an annotation to validators)."""
    seen = 0
    for _, _, operation in _operations():
        media = operation["responses"].get("200", {}).get("content", {}).get("text/event-stream")
        if media is None:
            continue
        content = media["schema"]["properties"]["data"]["anyOf"][1]["contentSchema"]
        validator = _validator(content)
        values = [example["value"]["data"] for example in media["examples"].values()]
        assert values[-1] == "[DONE]" and "[DONE]" not in values[:-1]
        for data in values[:-1]:
            assert list(validator.iter_errors(json.loads(data))) == [], (operation["operationId"], data[:200])
            seen += 1
    assert seen >= 3


def test_a_wrong_example_is_caught() -> None:
    """The validation above can fail: a chat response without choices does not pass."""
    media = DOCUMENT["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]["application/json"]
    broken = {k: v for k, v in next(iter(media["examples"].values()))["value"].items() if k != "choices"}
    assert list(_validator(media["schema"]).iter_errors(broken))


def test_headers_the_spec_requires_are_declared() -> None:
    for _, _, operation in _operations():
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert {"LLMOS-Version", "X-Request-Id"} <= set(headers), (operation["operationId"], status)
            codes = set(response.get("x-llmos-error-codes", []))
            if status in ("429", "503") and codes:
                assert "Retry-After" in headers
            if status == "401":
                assert "WWW-Authenticate" in headers
    assert DOCUMENT["servers"] and DOCUMENT["info"]["description"]
