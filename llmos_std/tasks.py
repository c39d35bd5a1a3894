"""Standard tasks (translate, summarize, answer) with standard pre- and post-processing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmos_std.inference import Usage
from llmos_std.wire import OpenWireModel, WireModel

TaskName = Literal["translate", "summarize", "answer"]


class TaskRequest(WireModel):
    """``POST /llmos/v1/tasks/{task}``; fields a task does not use are refused."""

    model: str = Field(min_length=1)
    input: str = Field(min_length=1)
    """The text to translate or summarise, or the question to answer."""
    source_language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    """BCP 47 tag (translate)."""
    target_language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    """BCP 47 tag (translate; required there)."""
    context: str | None = None
    """Reference text the answer must come from (answer)."""
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None


class TaskResponse(OpenWireModel):
    id: str = Field(min_length=1)
    object: Literal["llmos.task_result"] = "llmos.task_result"
    created: int
    task: TaskName
    model: str
    output: str
    """Post-processed: trimmed, without template echo or special tokens."""
    finish_reason: Literal["stop", "length"]
    usage: Usage
    system_fingerprint: str | None = None


class TaskInfo(OpenWireModel):
    name: TaskName
    models: list[str]
    """Models that can run the task (those with a template for it)."""


class TaskList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[TaskInfo]
