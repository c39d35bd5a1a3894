"""Worked examples of every operation: what the OpenAPI document shows under ``examples``.

They were recorded from the reference server (generated text and vectors shortened by hand) and
live as data beside this module, so that the exported document, the tests that validate each
example against its schema, and readers all see the same exchange.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field, JsonValue

from llmos_std.errors import ERROR_CODES


class OperationExample(BaseModel):
    """One operation's example exchange; absent parts do not apply to the operation."""

    request: JsonValue | None = None
    response: JsonValue | None = None
    """The success body (JSON operations)."""
    responses: dict[str, JsonValue] = Field(default_factory=dict)
    """Bodies of the operation's other non-error responses, by status."""
    stream_request: JsonValue | None = None
    stream: list[JsonValue] | None = None
    """The events' ``data`` of the streamed form, in order (``[DONE]`` not included)."""
    response_text: str | None = None
    """A non-JSON success body (JSON Lines, or a blob's bytes as text)."""
    body_text: str | None = None
    """A bytes request body, as text."""
    path: dict[str, str] = Field(default_factory=dict)
    note: str | None = None


@cache
def operation_examples() -> dict[str, OperationExample]:
    text = resources.files("llmos_std").joinpath("example_data/operations.json").read_text(encoding="utf-8")
    return {op: OperationExample.model_validate(value) for op, value in json.loads(text).items()}


def error_example(code: str) -> dict[str, Any]:
    """An envelope for ``code``, its message the code's meaning."""
    error = ERROR_CODES[code]
    return {"error": {"message": error.description, "type": error.type, "param": None, "code": code}}


def sse_text(events: list[JsonValue]) -> str:
    """The wire form of a stream: one ``data:`` line per event, then ``data: [DONE]``."""
    lines = [f"data: {json.dumps(event, separators=(',', ':'), ensure_ascii=False)}\n\n" for event in events]
    return "".join(lines) + "data: [DONE]\n\n"
