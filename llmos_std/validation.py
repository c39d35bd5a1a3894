"""Turns pydantic validation failures into the standard's errors, naming the field at fault.

Shared by servers (to answer) and clients (to explain), so that a wrong type, a missing field and
an unknown field map to the same codes everywhere.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from llmos_std.errors import LLMOSError
from llmos_std.pipeline import STEP_OPS
from llmos_std.query import FILTER_OPS

_UNION_TAG = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\]|function-.*|literal\[.*\]|json-or-python\[.*\]|tagged-union\[.*\])$")
_DISCRIMINATOR_VALUES = frozenset({"system", "developer", "user", "assistant", "tool", "text", "image_url", *STEP_OPS, *FILTER_OPS})
_FILTER_HOLDERS = frozenset({"where", "of"})
"""Fields that hold a filter node directly (not in a list), whose tag pydantic also puts in the path."""


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
