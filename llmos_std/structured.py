"""Structured outputs: ``response_format`` and the JSON Schema subset a server claiming
``structured-outputs`` must enforce (LLMOS-SO-001..004).

The subset is what constrained decoders enforce exactly today (llguidance, xgrammar, outlines-core
agree on it) and what OpenAI's strict mode accepts, minus nothing a client commonly writes: the
object, array, string, number and boolean shapes, enums and constants, unions, local references and
the usual bounds. A server may enforce more; what it cannot enforce it refuses, never ignores.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, JsonValue

from llmos_std.wire import WireModel

SCHEMA_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"

STRICT_SUBSET: frozenset[str] = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "enum", "const", "anyOf",
    "$ref", "$defs", "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "pattern", "format",
    # annotations: no effect on what validates
    "title", "description", "default", "examples", "$schema", "$comment",
})
"""Keywords every server claiming ``structured-outputs`` enforces; ``pattern`` is a regular expression
without look-around or back-references, ``$ref`` points into the schema's own ``$defs``."""
STRICT_FORMATS: frozenset[str] = frozenset({"date", "time", "date-time", "uuid", "ipv4"})
"""Values of ``format`` in the subset; the subset enforces them as assertions."""


def outside_strict_subset(schema: Any, where: str = "") -> list[str]:
    """JSON Pointers of the keywords (and ``format`` values) a schema uses beyond the subset."""
    found: list[str] = []
    if isinstance(schema, bool):
        return found
    if not isinstance(schema, dict):
        return [where or "/"]
    for key, value in schema.items():
        pointer = f"{where}/{key}"
        if key not in STRICT_SUBSET:
            found.append(pointer)
        elif key == "format" and value not in STRICT_FORMATS:
            found.append(pointer)
        elif key == "$ref" and not (isinstance(value, str) and value.startswith("#/$defs/")):
            found.append(pointer)
        elif key in ("properties", "$defs") and isinstance(value, dict):
            for name, sub in value.items():
                found += outside_strict_subset(sub, f"{pointer}/{name}")
        elif key in ("anyOf", "prefixItems") and isinstance(value, list):
            for i, sub in enumerate(value):
                found += outside_strict_subset(sub, f"{pointer}/{i}")
        elif key in ("items", "additionalProperties") and isinstance(value, (dict, bool)):
            found += outside_strict_subset(value, pointer)
    return found


class ResponseFormatText(WireModel):
    type: Literal["text"]


class ResponseFormatJsonObject(WireModel):
    """Content is the JSON text of an object (any object)."""

    type: Literal["json_object"]


class JsonSchemaFormat(WireModel):
    name: str = Field(pattern=SCHEMA_NAME_PATTERN)
    description: str | None = None
    schema_: dict[str, JsonValue] | bool | None = Field(default=None, alias="schema")
    """A JSON Schema (2020-12); absent means any JSON value."""
    strict: bool | None = None
    """With true, content MUST validate against ``schema`` (LLMOS-SO-001)."""


class ResponseFormatJsonSchema(WireModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[Union[ResponseFormatText, ResponseFormatJsonObject, ResponseFormatJsonSchema], Field(discriminator="type")]
