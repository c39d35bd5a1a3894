"""Schemathesis hooks for the LLMOS document, loaded with ``SCHEMATHESIS_HOOKS=tests.support.schemathesis_hooks``.

Schemathesis validates each server-sent event against the stream's schema itself; a JSON Lines
body is (de)serialized here as the document describes it: the list of its lines.

The check ``llmos_form_accepted`` stands in for schemathesis's ``positive_data_acceptance``, which expects 2xx for every schema-valid request: LLMOS refuses some schema-valid requests for
reasons only the server's state can know (a model's capabilities, the limits in discovery, a
blob's content, a cursor it did not issue), always with 400 and a code saying so. What must never
happen is a schema-valid request refused *for its form*.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

FORM_REFUSALS = ("invalid value for ", "missing required parameter: ", "unsupported parameter: ", "the body ")
"""How the reference server words a refusal by its request models (llmos_std.validation): the form the
document's schemas describe. Refusals worded otherwise judge state the schema cannot see (the time,
a key's PEM, a task's needs)."""


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
