"""Base classes for wire models: strict, closed, documented from field docstrings.

Strictness is part of the contract: a server that sends ``"created": "123"`` is wrong, and the
kit must be able to say so by validating with these same models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A closed wire object: unknown fields are rejected, nothing is coerced."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        use_attribute_docstrings=True,
        frozen=False,
        populate_by_name=False,
        json_schema_serialization_defaults_required=True,
    )


def optional_in_schema(*names: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` hook: these defaulted fields may be absent on the wire.

    Response schemas require defaulted fields (clients rely on ``id``, ``created``...); the few that
    OpenAI-compatible servers legitimately omit (``usage`` on chunks, ``delta.role``) are listed here.
    """

    def hook(schema: dict[str, Any]) -> None:
        required = schema.get("required")
        if isinstance(required, list):
            schema["required"] = [name for name in required if name not in names]
            if not schema["required"]:
                del schema["required"]

    return hook


class OpenWireModel(BaseModel):
    """A wire object that tolerates additive fields (OpenAI objects that vendors may extend)."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        use_attribute_docstrings=True,
        json_schema_serialization_defaults_required=True,
    )
