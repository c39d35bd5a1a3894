"""Prose and schema cannot disagree: every JSON example in spec/src/*.md names the schema it instantiates
(```json Name, or Name#/$defs/Def for a nested object) and validates against the exported schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from llmos_std.export import schema_files

SOURCES = Path(__file__).resolve().parent.parent / "spec" / "src"
BLOCK = re.compile(r"^```json((?:[ \t][^\n]*)?)\n(.*?)\n```", re.S | re.M)


def _examples() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(SOURCES.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{path.name}:{line}", match.group(1).strip(), match.group(2)))
    return found


def test_there_are_examples_to_check() -> None:
    assert len(_examples()) >= 28


@pytest.mark.parametrize(("where", "tag", "body"), _examples(), ids=[e[0] for e in _examples()])
def test_every_json_example_is_valid_against_its_schema(where: str, tag: str, body: str) -> None:
    assert tag, f"{where}: tag the block with the schema it shows (```json SchemaName)"
    name, _, pointer = tag.partition("#")
    root = schema_files()[f"{name}.json"]
    schema = {"$ref": f"#{pointer}", "$defs": root.get("$defs", {})} if pointer else root
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(json.loads(body))]
    assert errors == [], f"{where}: {errors}"
