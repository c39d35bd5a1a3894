"""Datasets: owned, versioned collections of JSON records, with lineage, queries and derive operations."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue

from llmos_std.errors import ErrorDetail
from llmos_std.pipeline import MAX_PIPELINE_STEPS, PipelineStep
from llmos_std.query import FieldPath
from llmos_std.wire import OpenWireModel, WireModel

DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
DATASET_ID_PATTERN = r"ds_[A-Za-z0-9]{1,61}"
DATASET_REF_PATTERN = rf"{DATASET_ID_PATTERN}(?:@[1-9][0-9]{{0,9}})?"
"""``ds_x`` (the latest version) or ``ds_x@3`` (version 3), in query, export and derive paths."""
DATASET_VERSION_HEADER = "LLMOS-Dataset-Version"
"""On query and export responses: the version that was read."""
JSONL_MEDIA_TYPES = ("application/jsonl", "application/x-ndjson", "application/jsonlines")
MAX_INDEXES = 16


class DatasetCreateRequest(WireModel):
    name: str = Field(pattern=DATASET_NAME_PATTERN)
    """Unique among the caller's datasets."""
    description: str | None = Field(default=None, max_length=4096)
    schema_: dict[str, JsonValue] | bool | None = Field(default=None, alias="schema")
    """Optional JSON Schema (2020-12: an object or a boolean) every appended record must satisfy."""
    indexes: list[FieldPath] = Field(default_factory=list, max_length=MAX_INDEXES)
    """Paths the server should index for queries; a hint: results never depend on it."""


class Dataset(OpenWireModel):
    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)

    id: str
    object: Literal["llmos.dataset"] = "llmos.dataset"
    name: str
    owner: str
    """The principal that created it; set by the server, never writable."""
    created: int
    version: int = Field(ge=1)
    """The latest version."""
    record_count: int = Field(ge=0)
    """Records in the latest version."""
    description: str | None = None
    schema_: dict[str, JsonValue] | bool | None = Field(default=None, alias="schema")
    indexes: list[str] = Field(default_factory=list)


class DatasetList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[Dataset]
    next_cursor: str | None = None


class VersionRef(OpenWireModel):
    dataset_id: str
    version: int = Field(ge=1)


class DatasetVersion(OpenWireModel):
    """One immutable version and where it came from (its lineage)."""

    object: Literal["llmos.dataset_version"] = "llmos.dataset_version"
    dataset_id: str
    version: int = Field(ge=1)
    created: int
    record_count: int = Field(ge=0)
    operation: Literal["create", "append", "derive"]
    parent: VersionRef | None
    """The version this one was made from: the previous version for an append, the source for a derive."""
    pipeline: list[PipelineStep] | None = None
    """The steps a derive ran."""
    records_in: int = Field(ge=0)
    """Records appended, or records of the derive's source."""
    records_out: int = Field(ge=0)
    """Records this version has."""


class DatasetVersionList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[DatasetVersion]
    """Oldest first."""


class AppendRecordsRequest(WireModel):
    records: list[dict[str, JsonValue]] = Field(min_length=1)
    """Appended atomically: all or none. The same batch can be sent as JSON Lines (``application/jsonl``)."""


class AppendRecordsResponse(OpenWireModel):
    object: Literal["llmos.append_result"] = "llmos.append_result"
    appended: int = Field(ge=1)
    record_count: int = Field(ge=0)
    version: int = Field(ge=1)
    """The version the append created."""


class DeriveDatasetRequest(WireModel):
    """Run a pipeline over a dataset version: into a new dataset when ``name`` is set, else a new version of the source."""

    name: str | None = Field(default=None, pattern=DATASET_NAME_PATTERN)
    pipeline: list[PipelineStep] = Field(min_length=1, max_length=MAX_PIPELINE_STEPS)


class Record(OpenWireModel):
    index: int = Field(ge=0)
    data: dict[str, JsonValue]


class QueryResponse(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[Record]
    next_cursor: str | None
    """Opaque; null on the last page."""
    version: int = Field(ge=1)
    """The version every page of this query reads."""


class OperationProgress(OpenWireModel):
    records_done: int = Field(ge=0)
    records_total: int = Field(ge=0)


class DataOperation(OpenWireModel):
    """A long-running data operation (a derive); poll ``GET /llmos/v1/operations/{operation_id}``."""

    id: str
    object: Literal["llmos.operation"] = "llmos.operation"
    kind: Literal["derive"]
    status: Literal["running", "succeeded", "failed"]
    created: int
    updated: int
    progress: OperationProgress
    result: VersionRef | None = None
    """The version created, once succeeded."""
    error: ErrorDetail | None = None
    """Why it failed; nothing it wrote remains."""
