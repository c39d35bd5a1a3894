"""The JSON inference operations as the operation table declares them, and the smallest valid body of each."""

from __future__ import annotations

from typing import Any

from llmos_std.operations import OPERATIONS_BY_ID

INFERENCE_OPS = ("create_completion", "create_chat_completion", "create_embedding")
"""The JSON inference operations, read from the operation table by id."""
_OPS = {op: OPERATIONS_BY_ID[op] for op in INFERENCE_OPS}
CAPABILITY_OF: dict[str, str] = {op: str(o.capability) for op, o in _OPS.items()}
PATH_OF: dict[str, str] = {op: o.path for op, o in _OPS.items()}
PROFILE_OF: dict[str, str] = {op: o.profile for op, o in _OPS.items()}
SCHEMA_OF: dict[str, str] = {op: o.request.__name__ for op, o in _OPS.items() if o.request is not None}
RESPONSE_OF: dict[str, str] = {op: o.response.__name__ for op, o in _OPS.items() if o.response is not None}
CHUNK_OF: dict[str, str] = {op: o.stream_chunk.__name__ for op, o in _OPS.items() if o.stream_chunk is not None}


def minimal_body(op: str, model: str, prompt: str = "hello world", max_tokens: int = 4) -> dict[str, Any]:
    if op == "create_completion":
        return {"model": model, "prompt": prompt, "max_tokens": max_tokens}
    if op == "create_chat_completion":
        return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    return {"model": model, "input": prompt}
