"""Typed httpx client for LLMOS servers, sync and async, built on the operation table.

Raw access: ``call(op_id, ...)`` returns any operation's ``httpx.Response`` unchecked; every error the
client raises for a server answer carries ``.response``; streams expose ``.response`` (headers) too.
Async stream methods are awaited (the request is sent, HTTP errors raise) and return an ``AsyncStream``.
Retries are opt-in: ``max_retries`` resends a 429 or 503 refusal after its ``Retry-After``.
"""

from __future__ import annotations

from llmos_std.client.aio import AsyncLLMOSClient
from llmos_std.client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    error_from_response,
    parse_retry_after,
)
from llmos_std.client.streams import AsyncStream, Stream
from llmos_std.client.sync import LLMOSClient
from llmos_std.sse import StreamProtocolError

__all__ = [
    "APIError", "AsyncLLMOSClient", "AsyncStream", "AuthenticationError", "BadRequestError",
    "ConflictError", "LLMOSClient", "NotFoundError", "PayloadTooLargeError", "PermissionDeniedError",
    "RateLimitError", "ResponseValidationError", "ServerError", "Stream", "StreamProtocolError",
    "error_from_response", "parse_retry_after",
]
