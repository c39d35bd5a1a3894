"""What the kit expects a server to hold: datasets as lists of immutable versions, compared canonically.

Pure: no wire. The expected records of a derive come from ``llmos_std.pipeline.run_local`` and of a
query from ``llmos_std.query`` (the normative semantics written as code); records are compared by
their RFC 8785 form, so ``1`` and ``1.0`` are equal and ``true`` and ``1`` are not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from llmos_std.canonical import canonicalize
from llmos_std.pipeline import PipelineStep, run_local
from llmos_std.query import QueryRequest, matches, order, project

_STEPS: TypeAdapter[list[PipelineStep]] = TypeAdapter(list[PipelineStep])


def steps_of(pipeline: Sequence[Mapping[str, Any]]) -> list[PipelineStep]:
    """The wire form of a pipeline as the step models (raises ``ValueError`` on an invalid one)."""
    return _STEPS.validate_json(json.dumps(list(pipeline)))


def normalized_pipeline(pipeline: Any) -> Any:
    """A pipeline with its defaults filled in, so that an echo with defaults equals what was sent."""
    return _STEPS.dump_python(steps_of(pipeline), mode="json")


def expected_output(pipeline: Sequence[Mapping[str, Any]], records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a derive of a model-free pipeline must produce (raises ``TemplateError`` where it must fail)."""
    return run_local(steps_of(pipeline), [dict(r) for r in records])


def expected_query(records: Sequence[Mapping[str, Any]], body: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Every ``(index, projected record)`` a complete query must return, in order."""
    request = QueryRequest.model_validate_json(json.dumps({k: v for k, v in body.items() if k not in ("limit", "cursor")}))
    kept = [(i, r) for i, r in enumerate(records) if request.where is None or matches(request.where, r)]
    return [(i, project(r, request.fields)) for i, r in order(kept, request.sort)]


def canonical(value: Any) -> str:
    return canonicalize(value).decode("utf-8")


def same(expected: Any, seen: Any) -> bool:
    return canonical(expected) == canonical(seen)


def first_difference(expected: Sequence[Any], seen: Sequence[Any]) -> str | None:
    """Where two record sequences part, in a line a report can show; None when they are equal."""
    for position, (want, got) in enumerate(zip(expected, seen)):
        if not same(want, got):
            return f"at position {position}: expected {_short(want)}, saw {_short(got)}"
    if len(expected) != len(seen):
        return f"{len(seen)} records where {len(expected)} were expected" + (
            f"; the first extra is {_short(seen[len(expected)])}" if len(seen) > len(expected) else f"; the first missing is {_short(expected[len(seen)])}"
        )
    return None


def _short(value: Any, limit: int = 160) -> str:
    text = canonical(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class ShadowDataset:
    """One dataset: ``versions[n - 1]`` holds the records of version ``n`` (version 1 is empty)."""

    id: str
    name: str
    versions: list[list[dict[str, Any]]] = field(default_factory=lambda: [[]])

    @property
    def latest(self) -> int:
        return len(self.versions)

    def has(self, version: int) -> bool:
        return 1 <= version <= self.latest

    def records(self, version: int | None = None) -> list[dict[str, Any]]:
        return self.versions[(self.latest if version is None else version) - 1]

    def append(self, records: Sequence[dict[str, Any]]) -> int:
        self.versions.append([*self.records(), *records])
        return self.latest

    def add_version(self, records: list[dict[str, Any]]) -> int:
        self.versions.append(records)
        return self.latest


@dataclass
class ShadowStore:
    """Every dataset a check made and still expects, and those it deleted (which must stay gone)."""

    datasets: dict[str, ShadowDataset] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def create(self, dataset_id: str, name: str) -> ShadowDataset:
        made = self.datasets[dataset_id] = ShadowDataset(dataset_id, name)
        return made

    def derive(self, source: str, version: int, pipeline: Sequence[Mapping[str, Any]], into: tuple[str, str] | None = None) -> tuple[str, int]:
        """Apply a model-free pipeline to ``source@version``: a new version of it, or (``into`` = id, name) a new dataset.

        Raises ``TemplateError`` when the derive must fail, leaving the store as it was.
        """
        output = expected_output(pipeline, self.datasets[source].records(version))
        if into is None:
            return source, self.datasets[source].add_version(output)
        # A derived dataset starts at version 1 holding the output: it has no empty version.
        target = self.create(*into)
        target.versions = [output]
        return target.id, 1

    def delete(self, dataset_id: str) -> None:
        del self.datasets[dataset_id]
        self.deleted.add(dataset_id)
