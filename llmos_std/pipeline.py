"""Preprocessing pipelines: the declarative steps of ``derive`` and the exact meaning of each.

Every text step is defined here as code as well as in prose (``spec/09-data.md``), so that the
worked examples of the spec, the reference server and the kit agree to the byte. Steps that need a
model (token counts, annotation) are defined by what they ask of it; servers run them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from llmos_std.canonical import canonicalize
from llmos_std.query import MISSING, FieldPath, Filter, matches, resolve
from llmos_std.tasks import LANGUAGE_TAG_PATTERN, TaskName
from llmos_std.wire import WireModel

MAX_PIPELINE_STEPS = 32
TOP_LEVEL_NAME = r"^[^.\"'\\\[\]*\x00-\x1f\x7f]{1,128}$"

WHITE_SPACE = frozenset(
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""The 25 code points with the Unicode ``White_Space`` property: what ``strip`` and ``collapse_whitespace`` remove."""

_WS_CLASS = "[" + "".join(f"\\u{ord(c):04x}" for c in sorted(WHITE_SPACE)) + "]"
_WS_RUN = re.compile(_WS_CLASS + "+")

PiiKind = Literal["email", "card", "ipv6", "ipv4", "phone"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "card", "ipv6", "ipv4", "phone")
"""Redaction order: each kind is replaced in the text left by the kinds before it."""
PII_PLACEHOLDERS: dict[str, str] = {kind: f"[{kind.upper()}]" for kind in PII_KINDS}

PII_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "card": r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])",
    "ipv6": r"(?<![0-9A-Za-z:])[0-9A-Fa-f:]{2,39}(?![0-9A-Za-z:]|\.[0-9])",
    "ipv4": r"(?<![0-9])(?<![0-9]\.)(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}(?!\.?[0-9])",
    "phone": r"(?<![0-9A-Za-z+])(?:\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}|\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-][0-9]{4})(?![0-9A-Za-z])",
}
"""Candidate patterns (ASCII). A ``card`` candidate is replaced only when its digits pass the Luhn
check; an ``ipv6`` candidate only when it is an RFC 4291 section 2.2 form 1 or 2 address."""

_COMPILED = {kind: re.compile(pattern, re.ASCII) for kind, pattern in PII_PATTERNS.items()}


# ---------------------------------------------------------------- steps


class NormalizeStep(WireModel):
    op: Literal["normalize"]
    field: FieldPath
    form: Literal["NFC", "NFKC"] = "NFC"


class StripStep(WireModel):
    op: Literal["strip"]
    field: FieldPath


class CollapseWhitespaceStep(WireModel):
    op: Literal["collapse_whitespace"]
    field: FieldPath


class LowercaseStep(WireModel):
    op: Literal["lowercase"]
    field: FieldPath


class DedupeStep(WireModel):
    op: Literal["dedupe"]
    field: FieldPath | None = None
    """Keep the first record per value of this field; per whole record when absent."""


class FilterStep(WireModel):
    op: Literal["filter"]
    where: Filter
    """Keep the records this filter matches (the query language)."""


class LengthFilterStep(WireModel):
    op: Literal["length_filter"]
    field: FieldPath
    unit: Literal["characters", "tokens"] = "characters"
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)
    model: str | None = Field(default=None, min_length=1)
    """The model whose tokenizer counts ``tokens`` (required for that unit)."""


class RedactPiiStep(WireModel):
    op: Literal["redact_pii"]
    field: FieldPath
    kinds: list[PiiKind] = Field(default_factory=lambda: list(PII_KINDS), min_length=1)


class TemplateStep(WireModel):
    op: Literal["template"]
    into: str = Field(pattern=TOP_LEVEL_NAME)
    """The top-level field that receives the rendered text (created or replaced)."""
    template: str = Field(min_length=1, max_length=16384)
    """Text with ``{path}`` placeholders; ``{{`` and ``}}`` are literal braces."""


class TruncateTokensStep(WireModel):
    op: Literal["truncate_tokens"]
    field: FieldPath
    max_tokens: int = Field(ge=1)
    model: str = Field(min_length=1)


class TokenCountStep(WireModel):
    op: Literal["token_count"]
    field: FieldPath
    into: str = Field(pattern=TOP_LEVEL_NAME)
    model: str = Field(min_length=1)


class AnnotateStep(WireModel):
    op: Literal["annotate"]
    task: TaskName
    field: FieldPath
    """The task's input (the text, or the question for ``answer``)."""
    into: str = Field(pattern=TOP_LEVEL_NAME)
    model: str = Field(min_length=1)
    target_language: str | None = Field(default=None, pattern=LANGUAGE_TAG_PATTERN)
    source_language: str | None = Field(default=None, pattern=LANGUAGE_TAG_PATTERN)
    context_field: FieldPath | None = None
    """For ``answer``: the field holding the context."""
    max_tokens: int | None = Field(default=None, ge=1)


PipelineStep = Annotated[
    Union[
        NormalizeStep, StripStep, CollapseWhitespaceStep, LowercaseStep, DedupeStep, FilterStep, LengthFilterStep,
        RedactPiiStep, TemplateStep, TruncateTokensStep, TokenCountStep, AnnotateStep,
    ],
    Field(discriminator="op"),
]
STEP_OPS: tuple[str, ...] = (
    "normalize", "strip", "collapse_whitespace", "lowercase", "dedupe", "filter", "length_filter", "redact_pii",
    "template", "truncate_tokens", "token_count", "annotate",
)
MODEL_STEPS: tuple[str, ...] = ("length_filter", "truncate_tokens", "token_count", "annotate")
"""Steps that can name a model (``length_filter`` only with ``unit: tokens``)."""


# ---------------------------------------------------------------- text functions


def lstrip(text: str) -> str:
    start = 0
    while start < len(text) and text[start] in WHITE_SPACE:
        start += 1
    return text[start:]


def rstrip(text: str) -> str:
    end = len(text)
    while end > 0 and text[end - 1] in WHITE_SPACE:
        end -= 1
    return text[:end]


def strip(text: str) -> str:
    return lstrip(rstrip(text))


def collapse_whitespace(text: str) -> str:
    return _WS_RUN.sub(" ", strip(text))


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def ipv6_valid(text: str) -> bool:
    """RFC 4291 section 2.2, forms 1 and 2 (no embedded IPv4, no zone)."""
    if text.count("::") > 1 or ":::" in text:
        return False
    hexdigit = re.compile(r"^[0-9A-Fa-f]{1,4}$")
    if "::" in text:
        head, tail = text.split("::")
        groups = [g for g in (head.split(":") if head else [])] + [g for g in (tail.split(":") if tail else [])]
        return len(groups) <= 7 and all(hexdigit.match(g) for g in groups)
    groups = text.split(":")
    return len(groups) == 8 and all(hexdigit.match(g) for g in groups)


def redact(text: str, kinds: Iterable[str] = PII_KINDS) -> str:
    wanted = set(kinds)
    for kind in PII_KINDS:
        if kind not in wanted:
            continue
        placeholder = PII_PLACEHOLDERS[kind]
        if kind == "card":
            text = _COMPILED[kind].sub(lambda m: placeholder if luhn_valid(re.sub(r"[ -]", "", m.group())) else m.group(), text)
        elif kind == "ipv6":
            text = _COMPILED[kind].sub(lambda m: placeholder if m.group().count(":") >= 2 and ipv6_valid(m.group()) else m.group(), text)
        else:
            text = _COMPILED[kind].sub(placeholder, text)
    return text


class TemplateError(ValueError):
    """A template placeholder names a field the record lacks (the derive fails)."""


_PLACEHOLDER = re.compile(r"{{|}}|{([^{}]*)}")


def placeholders(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1) is not None]


def render_value(value: Any) -> str:
    return value if isinstance(value, str) else canonicalize(value).decode("utf-8")


def render_template(template: str, record: Mapping[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        token = match.group()
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = resolve(record, match.group(1))
        if value is MISSING:
            raise TemplateError(f"the record has no field {match.group(1)!r}")
        return render_value(value)

    return _PLACEHOLDER.sub(fill, template)


def template_problem(template: str) -> str | None:
    """Why a template is malformed (an unmatched brace or a placeholder that is not a path), or None."""
    from llmos_std.query import FIELD_PATH_PATTERN

    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        return "an unmatched brace; write {{ or }} for a literal brace"
    bad = [p for p in placeholders(template) if re.match(FIELD_PATH_PATTERN, p) is None]
    return f"{bad[0]!r} is not a field path" if bad else None


# ---------------------------------------------------------------- record steps


TEXT_FUNCTIONS: dict[str, Callable[[Any], Callable[[str], str]]] = {
    "strip": lambda step: strip,
    "collapse_whitespace": lambda step: collapse_whitespace,
    "lowercase": lambda step: str.lower,
    "normalize": lambda step: lambda text: unicodedata.normalize(step.form, text),
    "redact_pii": lambda step: lambda text: redact(text, step.kinds),
}
"""Steps that rewrite one string field in place; a record whose field is missing or not a string passes unchanged."""


def with_value(record: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of the record with an existing path set to ``value``."""
    names = path.split(".")
    out = dict(record)
    target = out
    for name in names[:-1]:
        target[name] = dict(target[name])
        target = target[name]
    target[names[-1]] = value
    return out


def apply_text_step(step: Any, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    function = TEXT_FUNCTIONS[step.op](step)
    for record in records:
        value = resolve(record, step.field)
        yield with_value(record, step.field, function(value)) if isinstance(value, str) else record


def dedupe(step: DedupeStep, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[bytes] = set()
    for record in records:
        value = record if step.field is None else resolve(record, step.field)
        if value is MISSING:
            yield record
            continue
        key = canonicalize(value)
        if key not in seen:
            seen.add(key)
            yield record


def apply_local_step(step: Any, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The steps that need no model, applied lazily in order. Raises TemplateError from ``template``."""
    if step.op in TEXT_FUNCTIONS:
        return apply_text_step(step, records)
    if isinstance(step, DedupeStep):
        return dedupe(step, records)
    if isinstance(step, FilterStep):
        return (r for r in records if matches(step.where, r))
    if isinstance(step, LengthFilterStep) and step.unit == "characters":
        return (r for r in records if _within(resolve(r, step.field), step.min, step.max, len))
    if isinstance(step, TemplateStep):
        return ({**r, step.into: render_template(step.template, r)} for r in records)
    raise ValueError(f"{step.op} needs a model; the server runs it")


def _within(value: Any, low: int, high: int | None, measure: Callable[[str], int]) -> bool:
    if not isinstance(value, str):
        return False
    size = measure(value)
    return size >= low and (high is None or size <= high)


def length_filter_tokens(step: LengthFilterStep, records: Iterable[dict[str, Any]], count: Callable[[str], int]) -> Iterator[dict[str, Any]]:
    return (r for r in records if _within(resolve(r, step.field), step.min, step.max, count))


def run_local(pipeline: Iterable[Any], records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step of a model-free pipeline over the records: the expected output of a derive."""
    stream: Iterable[dict[str, Any]] = records
    for step in pipeline:
        stream = apply_local_step(step, stream)
    return list(stream)
