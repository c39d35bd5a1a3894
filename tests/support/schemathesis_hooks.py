"""Schemathesis hooks for the LLMOS document, loaded with ``SCHEMATHESIS_HOOKS=tests.support.schemathesis_hooks``.

Deserializers turn the two non-JSON bodies into what the document describes (see ``_SSE_BODY`` in
llmos_std/export.py): a stream into the list of its events' data, a JSON Lines body into the list of
its lines. The check ``llmos_form_accepted`` stands in for schemathesis's ``positive_data_acceptance``,
which expects 2xx for every schema-valid request: LLMOS refuses some schema-valid requests for
reasons only the server's state can know (a model's capabilities, the limits in discovery, a
blob's content, a cursor it did not issue), always with 400 and a code saying so. What must never
happen is a schema-valid request refused *for its form*.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from llmos_std.sse import DataEvent, SSEParser

FORM_REFUSALS = ("invalid value for ", "missing required parameter: ", "unsupported parameter: ", "the body ")
"""How the reference server words a refusal by its request models (llmos_std.validation): the form the
document's schemas describe. Refusals worded otherwise judge state the schema cannot see (the time,
a key's PEM, a task's needs)."""


@schemathesis.deserializer("text/event-stream")
def events(ctx: Any, response: Any) -> list[Any]:
    parser = SSEParser()
    received = parser.feed(response.content)
    parser.close()  # a stream cut inside an event is a protocol error, reported as a failed deserialization
    return [json.loads(event.data) if isinstance(event, DataEvent) else "[DONE]" for event in received]


@schemathesis.serializer("application/jsonl")
def jsonl_body(ctx: Any, value: Any) -> bytes:
    """The document types a JSON Lines body as a string: sent as its UTF-8 text."""
    return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode("utf-8")


@schemathesis.deserializer("application/jsonl")
def lines(ctx: Any, response: Any) -> list[Any]:
    return [json.loads(line) for line in response.content.decode("utf-8").splitlines() if line.strip()]


@schemathesis.check
def llmos_form_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    error = response.json().get("error", {})
    if str(error.get("message", "")).startswith(FORM_REFUSALS):
        raise AssertionError(f"a schema-valid request was refused for its form: {error.get('code')} ({error.get('message')})")
    return None
