"""The client's exceptions, built from the standard's error envelope (and a stream's error event)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from llmos_std.errors import ERROR_CODES, ErrorCodeSpec, ErrorEnvelope

class APIError(Exception):
    """The server answered with an error: a non-2xx status, or an error event inside a stream.

    ``code``, ``type`` and ``param`` come from the envelope (None when the body was not one).
    Unlike :class:`llmos_std.errors.LLMOSError` it keeps what the wire said, even a code or status
    the standard does not define. Inside a stream ``status`` is the status the code maps to, while
    ``response.status_code`` is the 200 the stream started with.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        response: httpx.Response,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        envelope: ErrorEnvelope | None = None,
    ) -> None:
        super().__init__(f"{status} {code or '-'}: {message}")
        self.message = message
        self.status = status
        self.response = response
        self.code = code
        self.type = type
        self.param = param
        self.envelope = envelope

    @property
    def spec(self) -> ErrorCodeSpec | None:
        """The standard's entry for ``code``, or None when the code is null or not in the table."""
        return ERROR_CODES.get(self.code) if self.code is not None else None


class BadRequestError(APIError):
    """400."""


class AuthenticationError(APIError):
    """401."""


class PermissionDeniedError(APIError):
    """403."""


class NotFoundError(APIError):
    """404."""


class ConflictError(APIError):
    """409."""


class PayloadTooLargeError(APIError):
    """413."""


class RateLimitError(APIError):
    """429; ``retry_after`` is the ``Retry-After`` header in seconds, or None when absent or invalid."""

    def __init__(self, message: str, *, status: int, response: httpx.Response, **fields: Any) -> None:
        super().__init__(message, status=status, response=response, **fields)
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))


class ServerError(APIError):
    """Any 5xx."""


class ResponseValidationError(Exception):
    """A 2xx body (or stream event) that does not validate, strictly, against the operation's model."""

    def __init__(self, model: type[BaseModel], error: ValidationError, response: httpx.Response) -> None:
        super().__init__(f"{model.__name__}: {error}")
        self.model = model
        self.validation_error = error
        self.response = response


_CLASS_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 413: PayloadTooLargeError, 429: RateLimitError,
}
STATUS_BY_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
    "not_found_error": 404, "conflict_error": 409, "rate_limit_error": 429, "server_error": 500,
}


def _error_class(status: int) -> type[APIError]:
    return ServerError if 500 <= status <= 599 else _CLASS_BY_STATUS.get(status, APIError)


def _preview(content: bytes) -> str:
    text = content[:200].decode("utf-8", errors="backslashreplace")
    return repr(text) + ("..." if len(content) > 200 else "")


def from_envelope(envelope: ErrorEnvelope, status: int, response: httpx.Response) -> APIError:
    detail = envelope.error
    return _error_class(status)(
        detail.message, status=status, response=response, code=detail.code, type=detail.type,
        param=detail.param, envelope=envelope,
    )


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for a non-2xx response whose body has been read."""
    status = response.status_code
    try:
        envelope = ErrorEnvelope.model_validate_json(response.content)
    except ValidationError:
        message = f"HTTP {status}; the body was not an error envelope: {_preview(response.content)}"
        return _error_class(status)(message, status=status, response=response)
    return from_envelope(envelope, status, response)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or invalid."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
