"""Datasets: owned collections of JSON records with declarative preprocessing and cursor queries."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, JsonValue

from llmos_std.wire import OpenWireModel, WireModel

DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class DatasetCreateRequest(WireModel):
    name: str = Field(pattern=DATASET_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=4096)
    schema_: JsonValue = Field(default=None, alias="schema")
    """Optional JSON Schema every appended record must satisfy."""


class Dataset(OpenWireModel):
    id: str
    object: Literal["llmos.dataset"] = "llmos.dataset"
    name: str
    owner: str
    """The principal that created it; set by the server, never writable."""
    created: int
    record_count: int = Field(ge=0)
    description: str | None = None


class DatasetList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[Dataset]
    next_cursor: str | None = None


class AppendRecordsRequest(WireModel):
    records: list[dict[str, JsonValue]] = Field(min_length=1)
    """Appended atomically: all or none."""


class AppendRecordsResponse(OpenWireModel):
    object: Literal["llmos.append_result"] = "llmos.append_result"
    appended: int
    record_count: int


class LowercaseStep(WireModel):
    op: Literal["lowercase"]
    field: str


class StripStep(WireModel):
    op: Literal["strip"]
    field: str


class FilterStep(WireModel):
    op: Literal["filter"]
    field: str
    equals: JsonValue


class DedupeStep(WireModel):
    op: Literal["dedupe"]
    field: str


class TruncateTokensStep(WireModel):
    op: Literal["truncate_tokens"]
    field: str
    max_tokens: int = Field(ge=1)
    model: str


PipelineStep = Annotated[
    Union[LowercaseStep, StripStep, FilterStep, DedupeStep, TruncateTokensStep], Field(discriminator="op")
]


class DeriveDatasetRequest(WireModel):
    """Create a new dataset by running a declarative pipeline over an existing one."""

    name: str = Field(pattern=DATASET_NAME_PATTERN)
    pipeline: list[PipelineStep] = Field(min_length=1)


class QueryRequest(WireModel):
    where: dict[str, JsonValue] = Field(default_factory=dict)
    """Field equality filters."""
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = None


class Record(OpenWireModel):
    index: int = Field(ge=0)
    data: dict[str, JsonValue]


class QueryResponse(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[Record]
    next_cursor: str | None
    """Opaque; null on the last page."""
