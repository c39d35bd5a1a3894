"""Constrained decoding: grammars for structured outputs and tool calls, and the per-row matcher
the batcher consults at every step (LLMOS-SO-001..004, LLMOS-TOOL-001..003).

Engine: llguidance (PyPI ``llguidance``), chosen over xgrammar and outlines-core after trying all
three on this CPU-only machine:
- it computes each step's token mask lazily from the current parser state (tens of microseconds
  for the schemas here), where outlines-core compiles an index of the whole schema up front (slow
  and memory-hungry for wide schemas) and xgrammar's CPU path needs a per-vocabulary compile first;
- its JSON Schema coverage is the broadest of the three (anyOf, $ref/$defs, pattern, bounds,
  formats) and it *reports* what it cannot enforce, which is how a server refuses a schema
  (``schema_unsupported``) instead of answering it unconstrained;
- one abi3 wheel, no torch or CUDA dependency: masks come back as bytes and the batcher (the only
  torch code) turns them into a boolean mask.
The JSON it admits is compact (no insignificant whitespace): a 135M model then cannot wander in
whitespace until ``max_tokens`` runs out, and a call's text has one fixed prefix to read the name from.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import llguidance
from llguidance import LLMatcher

_COMPACT = {"whitespace_flexible": False}


class ConstraintError(ValueError):
    """A schema the engine cannot enforce; the message says what."""


@dataclass(frozen=True)
class Grammar:
    """A compiled-once grammar text (llguidance's Lark dialect); rows build their own matchers from it."""

    lark: str
    kind: Literal["json", "call", "call-or-text"]


def _compact(schema: Any) -> dict[str, Any]:
    body: dict[str, Any] = {} if schema is None or schema is True else copy.deepcopy(schema)
    body["x-guidance"] = _COMPACT
    return body


def json_grammar(schema: Any) -> Grammar:
    """Any JSON value valid against ``schema`` (None: any JSON value)."""
    return Grammar(f"start: %json {json.dumps(_compact(schema))}\n", "json")


def call_schema(tools: dict[str, Any]) -> dict[str, Any]:
    """One call of one of ``tools`` (name -> parameters schema), written ``{"name":...,"arguments":{...}}``."""
    variants = [
        {"type": "object", "properties": {"name": {"const": name}, "arguments": parameters if parameters is not None else {"type": "object"}},
         "required": ["name", "arguments"], "additionalProperties": False}
        for name, parameters in tools.items()
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def call_grammar(tools: dict[str, Any], *, optional: bool) -> Grammar:
    """A call; with ``optional``, a call or text that does not start with ``{`` (``tool_choice: auto``)."""
    call = json.dumps(_compact(call_schema(tools)))
    if not optional:
        return Grammar(f"start: %json {call}\n", "call")
    return Grammar(f"start: call | text\ncall: %json {call}\ntext: /[^{{][^\\x00]*/\n", "call-or-text")


class Vocabulary:
    """The model's tokenizer as llguidance sees it, built once per loaded model."""

    def __init__(self, hf_tokenizer: Any, n_vocab: int, eos_ids: list[int]) -> None:
        import llguidance.hf

        self._tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=n_vocab, eos_token=eos_ids)
        self.size = int(self._tokenizer.vocab_size)

    def check(self, grammar: Grammar) -> None:
        """Raises ConstraintError when the grammar (its schemas) cannot be enforced."""
        failed, messages = LLMatcher.validate_grammar_with_warnings(grammar.lark, self._tokenizer)
        if failed:
            raise ConstraintError(_first_line(messages))

    def matcher(self, grammar: Grammar) -> RowConstraint:
        return RowConstraint(LLMatcher(self._tokenizer, grammar.lark, log_level=0))


def _first_line(messages: list[str]) -> str:
    text = (messages[0] if messages else "the schema cannot be enforced").strip()
    # Keep llguidance's explanation; drop the caret lines and the quoted grammar source (internal detail).
    lines = [line.strip() for line in text.splitlines() if line.strip() and not set(line.strip()) <= {"^"} and not re.match(r"^\d+ \|", line.strip())]
    return "; ".join(lines)[:300]


class RowConstraint:
    """One row's parser state: which tokens may come next, fed every token the row samples."""

    def __init__(self, matcher: llguidance.LLMatcher) -> None:
        self._matcher = matcher

    def allowed(self) -> bytes:
        """A little-endian bitmask over the vocabulary: bit t is set when token t may come next."""
        return bytes(self._matcher.compute_bitmask())

    def consume(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            raise ConstraintError(f"the grammar refused token {token}: {self._matcher.get_error()}")

    @property
    def finished(self) -> bool:
        """The grammar admits nothing more: the row must end here."""
        return bool(self._matcher.is_stopped())
