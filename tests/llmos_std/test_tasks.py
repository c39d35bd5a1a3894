"""Task templates: the rendering rule (line removal, language names, one-pass substitution) and the request model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llmos_std.export import schema_files
from llmos_std.tasks import DEFAULT_OUTPUT_PREFIXES, DEFAULT_PROMPTS, TASK_FIELDS, TASK_NAMES, TaskRequest, language_name, render_task_prompt


def _values(**given: str | int | None) -> dict[str, str | int | None]:
    return {"input": None, "target_language": None, "source_language": None, "max_words": None, "context": None, **given}


def test_translate_with_every_field() -> None:
    text = render_task_prompt(DEFAULT_PROMPTS["translate"], _values(input="Hi", target_language="fr", source_language="en"))
    assert text == "Translate the following text into French. Reply with the translation only.\nThe text is in English.\n\nHi"


def test_a_line_naming_an_absent_field_goes_with_its_line_break() -> None:
    text = render_task_prompt(DEFAULT_PROMPTS["translate"], _values(input="Good morning, everyone.", target_language="fr"))
    assert text == "Translate the following text into French. Reply with the translation only.\n\nGood morning, everyone."
    summary = render_task_prompt(DEFAULT_PROMPTS["summarize"], _values(input="Long text."))
    assert summary == "Summarize the following text. Reply with the summary only.\n\nLong text."
    answer = render_task_prompt(DEFAULT_PROMPTS["answer"], _values(input="Why?"))
    assert answer == "Answer the question. Reply with the answer only.\n\nQuestion: Why?"


def test_numbers_and_context_are_substituted_as_text() -> None:
    assert "Use at most 50 words." in render_task_prompt(DEFAULT_PROMPTS["summarize"], _values(input="x", max_words=50))
    assert "Use only this context: The sky is blue.\n" in render_task_prompt(DEFAULT_PROMPTS["answer"], _values(input="x", context="The sky is blue."))


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("fr", "French"),  # in the table, no subtags
        ("pt-BR", "Portuguese (pt-BR)"),  # primary subtag in the table, with a region
        ("zh-Hant", "Chinese (zh-Hant)"),  # with a script
        ("tlh", "tlh"),  # not in the table: as written
        ("xx-YY", "xx-YY"),
    ],
)
def test_language_names(tag: str, name: str) -> None:
    assert language_name(tag) == name
    assert render_task_prompt("{target_language}", _values(target_language=tag)) == name


def test_substituted_values_are_never_expanded_again() -> None:
    values = _values(input="say {context} and {target_language}", target_language="de", context="CTX")
    assert render_task_prompt("{target_language}|{context}|{input}", values) == "German|CTX|say {context} and {target_language}"
    # a value that names an absent field does not remove its own line either
    assert render_task_prompt("A\n{input}\nB", _values(input="{source_language}")) == "A\n{source_language}\nB"


def test_other_braces_and_blank_lines_are_literal() -> None:
    template = "{unknown} {{input}}\n\n{input}\n{context} and {input}\nend"
    assert render_task_prompt(template, _values(input="x")) == "{unknown} {x}\n\nx\nend"


def test_every_task_has_a_default_prompt_with_its_input_and_an_output_prefix() -> None:
    assert set(DEFAULT_PROMPTS) == set(DEFAULT_OUTPUT_PREFIXES) == set(TASK_NAMES) == set(TASK_FIELDS)
    assert all("{input}" in prompt for prompt in DEFAULT_PROMPTS.values())


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "input": []},  # an empty batch
        {"model": "m", "input": 3},
        {"model": "m", "input": "x", "temperature": 2.5},
        {"model": "m", "input": "x", "target_language": "French"},  # a name, not a tag
        {"model": "m", "input": "x", "truncation": "middle"},
        {"model": "m", "input": "x", "max_words": 0},
        {"model": "m", "input": "x", "context": ""},
        {"model": "m", "input": "x", "prompt": "free text"},  # closed object
    ],
)
def test_malformed_task_requests_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TaskRequest.model_validate(body)


def test_the_schema_refuses_an_empty_batch_as_the_model_does() -> None:
    variants = schema_files()["TaskRequest.json"]["properties"]["input"]["anyOf"]
    assert {"type": "array", "items": {"type": "string"}, "minItems": 1} in variants
    assert TaskRequest.model_validate({"model": "m", "input": "x"}).temperature == 0.0
