"""Standard tasks (translate, summarize, answer): requests, results, default templates and their rendering.

The default templates and the rendering rule are part of the standard, so that a model package
that declares a task without its own prompt behaves the same on every server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, Union

from pydantic import Field

from llmos_std.inference import Usage
from llmos_std.wire import OpenWireModel, WireModel, optional_in_schema

TaskName = Literal["translate", "summarize", "answer"]
TASK_NAMES: tuple[TaskName, ...] = ("translate", "summarize", "answer")
LANGUAGE_TAG_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
DEFAULT_TASK_MAX_TOKENS = 256
"""The completion budget of a task when neither the request nor the template sets one."""

TASK_FIELDS: dict[str, frozenset[str]] = {
    "translate": frozenset({"target_language", "source_language"}),
    "summarize": frozenset({"max_words"}),
    "answer": frozenset({"context"}),
}
"""The task-specific request fields; a field of another task is refused."""
REQUIRED_FIELDS: dict[str, frozenset[str]] = {"translate": frozenset({"target_language"})}


class TaskRequest(WireModel):
    """``POST /llmos/v1/tasks/{task}``; fields a task does not use are refused."""

    model: str = Field(min_length=1)
    input: Union[str, Annotated[list[str], Field(min_length=1)]]
    """The text to translate or summarise, or the question to answer; a list runs each in one batch. No input may be empty."""
    source_language: str | None = Field(default=None, pattern=LANGUAGE_TAG_PATTERN)
    """BCP 47 tag (translate)."""
    target_language: str | None = Field(default=None, pattern=LANGUAGE_TAG_PATTERN)
    """BCP 47 tag (translate; required there)."""
    max_words: int | None = Field(default=None, ge=1, le=10000)
    """The longest summary wanted, in words (summarize)."""
    context: str | None = Field(default=None, min_length=1)
    """Reference text the answer must come from (answer)."""
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """0 (the default) decodes greedily."""
    seed: int | None = None
    truncation: Literal["disabled", "auto"] = "disabled"
    """``auto``: shorten the input (the context for ``answer``) from its end until the prompt fits."""
    stream: bool = False


class TaskResult(OpenWireModel):
    index: int = Field(ge=0)
    """The position of the input this result is for."""
    output: str
    """Post-processed: without template echo, special tokens or surrounding white space."""
    finish_reason: Literal["stop", "length"]
    truncated: bool = False
    """Whether ``truncation: auto`` shortened this input."""


class TaskResponse(OpenWireModel):
    id: str = Field(min_length=1)
    object: Literal["llmos.task_result"] = "llmos.task_result"
    created: int
    task: TaskName
    model: str
    results: list[TaskResult]
    """One per input, in input order."""
    usage: Usage
    system_fingerprint: str | None = None


class TaskDelta(OpenWireModel):
    index: int = Field(ge=0)
    delta: str
    finish_reason: Literal["stop", "length"] | None = None
    truncated: bool = False


class TaskChunk(OpenWireModel, json_schema_extra=optional_in_schema("usage")):
    """One server-sent event of a streamed task; the last before ``[DONE]`` has ``results: []`` and ``usage``."""

    id: str = Field(min_length=1)
    object: Literal["llmos.task_result.chunk"] = "llmos.task_result.chunk"
    created: int
    task: TaskName
    model: str
    results: list[TaskDelta]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class TaskInfo(OpenWireModel):
    name: TaskName
    models: list[str]
    """Models that can run the task (those whose package declares it)."""


class TaskList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[TaskInfo]


# ---------------------------------------------------------------- templates

DEFAULT_PROMPTS: dict[str, str] = {
    "translate": (
        "Translate the following text into {target_language}. Reply with the translation only.\n"
        "The text is in {source_language}.\n"
        "\n"
        "{input}"
    ),
    "summarize": (
        "Summarize the following text. Reply with the summary only.\n"
        "Use at most {max_words} words.\n"
        "\n"
        "{input}"
    ),
    "answer": (
        "Answer the question. Reply with the answer only.\n"
        "Use only this context: {context}\n"
        "\n"
        "Question: {input}"
    ),
}
"""The standard's templates, used when a package declares a task without a ``prompt`` of its own."""

DEFAULT_OUTPUT_PREFIXES: dict[str, str] = {"translate": "Translation:", "summarize": "Summary:", "answer": "Answer:"}
"""Appended (after a blank line) to a prompt for a model without chat, and removed from outputs that echo it."""

LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic", "bn": "Bengali", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "no": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "sw": "Swahili",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}
"""English names substituted for a language tag's primary subtag; any other tag is substituted as written."""

_FIELD = re.compile(r"{(input|target_language|source_language|max_words|context)}")


def language_name(tag: str) -> str:
    return LANGUAGE_NAMES.get(tag.split("-")[0].lower(), tag) if "-" not in tag else _regional(tag)


def _regional(tag: str) -> str:
    primary = LANGUAGE_NAMES.get(tag.split("-")[0].lower())
    return f"{primary} ({tag})" if primary else tag


def render_task_prompt(template: str, values: Mapping[str, str | int | None]) -> str:
    """Fill a task template: a line naming a field the request left out is removed with its line break;
    languages become their English names; every other placeholder is replaced by the field's text."""
    kept = [line for line in template.split("\n") if all(values.get(m.group(1)) is not None for m in _FIELD.finditer(line))]

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values[name]
        if name in ("target_language", "source_language"):
            return language_name(str(value))
        return str(value)

    return _FIELD.sub(fill, "\n".join(kept))
