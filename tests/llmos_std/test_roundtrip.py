"""Every wire model round-trips: generated JSON -> model -> JSON valid under its exported schema -> equal model."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from conformance.strategies import from_schema
from llmos_std.export import _model_modes, schema_files
from llmos_std.inference import ChatCompletionResponse

SCHEMAS = schema_files()
MODELS = {model.__name__: (model, mode) for model, mode in _model_modes()}


def _fix_up(name: str, document: Any) -> Any:
    """Satisfy the few rules a JSON Schema cannot state, so that generated manifests can be valid."""
    if name == "PackageManifest" and isinstance(document, dict):
        document["license"] = "Apache-2.0 OR MIT"  # SPDX grammar is checked in code, not in the schema
        files = document.get("files")
        if isinstance(files, list) and files and isinstance(files[0], dict):
            files[0]["role"] = "weights"  # a package needs one weights file
    return document


def _generation_schema(model: type[BaseModel]) -> dict[str, Any]:
    # Generate from the validation-mode schema (what a sender may send); check against the export.
    return model.model_json_schema(mode="validation")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_round_trips_through_its_schema(name: str) -> None:
    model, _mode = MODELS[name]
    validator = jsonschema.Draft202012Validator(SCHEMAS[f"{name}.json"])
    round_tripped = 0

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(from_schema(_generation_schema(model)))
    def check(document: Any) -> None:
        nonlocal round_tripped
        try:
            instance = model.model_validate_json(json.dumps(_fix_up(name, document)))
        except ValidationError:
            # The generator cannot see validators beyond the schema (SemVer, SPDX, unique paths):
            # documents those refuse are not round-trip candidates.
            return
        dumped = json.loads(instance.model_dump_json(by_alias=True))
        validator.validate(dumped)
        assert model.model_validate_json(json.dumps(dumped)) == instance
        round_tripped += 1

    check()
    assert round_tripped > 0, "no generated document was a valid instance: the strategy is off"


def test_strict_validation_refuses_stringly_typed_integers() -> None:
    body = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": "123", "model": "m",
        "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
    }
    with pytest.raises(ValidationError) as info:
        ChatCompletionResponse.model_validate_json(json.dumps(body))
    assert info.value.errors()[0]["loc"] == ("created",)
    body["created"] = 123
    assert ChatCompletionResponse.model_validate_json(json.dumps(body)).created == 123


@given(st.text())
def test_strings_never_coerce_to_numbers(text: str) -> None:
    body = {"prompt_tokens": text, "completion_tokens": 0, "total_tokens": 0}
    from llmos_std.inference import Usage

    with pytest.raises(ValidationError):
        Usage.model_validate_json(json.dumps(body))
