"""Request validation reads numbers as JSON Schema does: an integer is any number with a zero fraction."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from llmos_std.data import DeriveDatasetRequest
from llmos_std.inference import ChatCompletionRequest, CompletionRequest
from llmos_std.validation import validate_json_body

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_an_integral_float_is_the_integer_and_the_body_is_left_alone() -> None:
    raw = {**CHAT, "max_tokens": 3.0, "n": 1e0, "seed": -2.0}
    request = validate_json_body(ChatCompletionRequest, raw)
    assert (request.max_tokens, request.n, request.seed) == (3, 1, -2)
    assert isinstance(request.max_tokens, int) and raw["max_tokens"] == 3.0 and isinstance(raw["max_tokens"], float)


@pytest.mark.parametrize("value", [3.5, "3", True, float("inf")])
def test_other_non_integers_stay_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        validate_json_body(ChatCompletionRequest, {**CHAT, "max_tokens": value})


def test_integers_inside_unions_lists_and_tagged_unions_are_mended() -> None:
    completion = validate_json_body(CompletionRequest, {"model": "m", "prompt": [[1.0, 2.0], [3.0]]})
    assert completion.prompt == [[1, 2], [3]]
    derive = validate_json_body(TypeAdapter(DeriveDatasetRequest), {"pipeline": [{"op": "length_filter", "field": "text", "min": 2.0, "max": 8.0}]})
    assert (derive.pipeline[0].min, derive.pipeline[0].max) == (2, 8)


def test_a_float_field_keeps_its_floats() -> None:
    assert validate_json_body(ChatCompletionRequest, {**CHAT, "temperature": 1.0}).temperature == 1.0
