"""Turns pydantic validation failures into the standard's errors, naming the field at fault.

Shared by servers (to answer) and clients (to explain), so that a wrong type, a missing field and
an unknown field map to the same codes everywhere.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from llmos_std.errors import LLMOSError
from llmos_std.pipeline import STEP_OPS
from llmos_std.query import FILTER_OPS

_UNION_TAG = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\]|function-.*|literal\[.*\]|json-or-python\[.*\]|tagged-union\[.*\])$")
_DISCRIMINATOR_VALUES = frozenset({"system", "developer", "user", "assistant", "tool", "text", "image_url", *STEP_OPS, *FILTER_OPS})
_FILTER_HOLDERS = frozenset({"where", "of"})
"""Fields that hold a filter node directly (not in a list), whose tag pydantic also puts in the path."""


_MAX_INTEGRAL_PASSES = 8
"""Each pass fixes every integral float pydantic reports; a union can hide a deeper one for one more pass."""


def validate_json_body(target: type[BaseModel] | TypeAdapter[Any], raw: Any, text: bytes | str | None = None) -> Any:
    """Validate a parsed JSON body with JSON Schema's number model: ``3.0`` is an integer.

    JSON has one number type, and JSON Schema's ``integer`` accepts any number with a zero
    fraction; Python's encoder writes ``3.0`` for a float that holds 3. Strict pydantic refuses it,
    so an ``int_type`` failure on an integral float is mended to the int and validated again; any
    other failure (``3.5``, ``"3"``, ``true``) stands. ``raw`` itself is left as it was. ``text`` is
    the body as received, when the caller has it: the first pass reads it instead of encoding ``raw``.
    """
    copied = False
    for _ in range(_MAX_INTEGRAL_PASSES):
        document = text if text is not None and not copied else json.dumps(raw)
        try:
            if isinstance(target, TypeAdapter):
                return target.validate_json(document)
            return target.model_validate_json(document)
        except ValidationError as exc:
            mended = False
            for error in exc.errors(include_url=False):
                value = error.get("input")
                if error["type"] == "int_type" and isinstance(value, float) and value.is_integer():
                    if not copied:
                        raw, copied = copy.deepcopy(raw), True
                    mended = _replace_at(raw, tuple(error["loc"]), int(value)) or mended
            if not mended:
                raise
    raise AssertionError("unreachable: integral floats did not converge")  # pragma: no cover


def _replace_at(node: Any, loc: tuple[int | str, ...], value: int) -> bool:
    """Set ``value`` at ``loc`` in the parsed body, skipping pydantic's union-branch labels."""
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            if last:
                node[part] = value
                return True
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if last:
                node[part] = value
                return True
            node = node[part]
    return False


def param_path(loc: tuple[int | str, ...]) -> str:
    """A dotted field path (``messages.0.content``) without pydantic's union-branch labels."""
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, str) and _UNION_TAG.match(part):
            continue
        # A discriminated union labels the branch by its tag right after a list index.
        if isinstance(part, str) and part in _DISCRIMINATOR_VALUES and index > 0 and (isinstance(loc[index - 1], int) or loc[index - 1] in _FILTER_HOLDERS):
            continue
        parts.append(str(part))
    return ".".join(parts)


def error_from_validation(exc: ValidationError) -> LLMOSError:
    """The one error a client gets for an invalid body: the first problem, with its field."""
    first = exc.errors(include_url=False, include_input=False)[0]
    param = param_path(tuple(first["loc"])) or None
    kind = first["type"]
    message = first["msg"]
    if kind == "extra_forbidden":
        return LLMOSError("unsupported_parameter", f"unsupported parameter: {param}", param=param)
    if kind == "missing":
        return LLMOSError("missing_required_parameter", f"missing required parameter: {param}", param=param)
    if kind in ("model_type", "model_attributes_type", "dict_type") and not param:
        return LLMOSError("invalid_request", "the body must be a JSON object")
    return LLMOSError("invalid_value", f"invalid value for {param or 'body'}: {message}", param=param)
