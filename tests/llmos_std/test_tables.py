"""The closed tables agree with each other: errors, operations, requirements, profiles, dispositions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmos_std.errors import ERROR_CODES, ERROR_TYPES, LLMOSError
from llmos_std.models import ModelRef
from llmos_std.operations import OPERATIONS, error_codes
from llmos_std.parameters import DISPOSITIONS, REQUEST_MODELS
from llmos_std.profiles import PROFILES, closure
from llmos_std.requirements import REQUIREMENTS, REQUIREMENTS_BY_ID, registry_problems

SPEC = Path(__file__).resolve().parents[2] / "spec"


def test_registry_is_self_consistent() -> None:
    assert registry_problems() == []


def test_every_operation_names_existing_requirements_of_its_profile_family() -> None:
    for op in OPERATIONS:
        assert op.requirements, f"{op.id} has no requirement"
        for req_id in op.requirements:
            assert req_id in REQUIREMENTS_BY_ID, f"{op.id} names unknown {req_id}"


def test_every_profile_has_requirements_and_operations() -> None:
    for profile in PROFILES:
        assert any(req.profile == profile for req in REQUIREMENTS), profile
    assert {op.profile for op in OPERATIONS} == set(PROFILES)


def test_operation_ids_and_routes_are_unique() -> None:
    assert len({op.id for op in OPERATIONS}) == len(OPERATIONS)
    assert len({(op.method, op.path) for op in OPERATIONS}) == len(OPERATIONS)


def test_every_error_code_has_a_status_a_type_and_is_documented() -> None:
    rendered = "\n".join(p.read_text(encoding="utf-8") for p in SPEC.glob("*.md"))
    for spec in ERROR_CODES.values():
        assert 400 <= spec.status <= 599
        assert spec.type in ERROR_TYPES
        assert re.fullmatch(r"[a-z][a-z_]*", spec.code), "codes are snake_case strings, never numbers"
        assert f"`{spec.code}`" in rendered, f"{spec.code} is not documented in spec/"


def test_every_error_code_an_operation_names_exists() -> None:
    for op in OPERATIONS:
        for code in error_codes(op):
            assert code in ERROR_CODES


def test_llmos_error_round_trips_through_the_envelope() -> None:
    error = LLMOSError("unsupported_parameter", "tools needs the tools capability", param="tools")
    assert error.status == 400
    again = LLMOSError.from_envelope(error.envelope())
    assert (again.code, again.param, again.message) == ("unsupported_parameter", "tools", error.message)
    with pytest.raises(ValueError):
        LLMOSError("teapot", "no such code")


def test_every_request_field_has_exactly_one_disposition() -> None:
    for operation, model in REQUEST_MODELS.items():
        rows = [d for d in DISPOSITIONS if d.operation == operation]
        fields = [d.field for d in rows]
        assert len(fields) == len(set(fields)), f"{operation}: a field with two dispositions"
        assert set(fields) == set(model.model_fields), f"{operation}: table and model disagree"
        for row in rows:
            assert (row.disposition == "capability-gated") == (row.capability is not None)


def test_profile_closure_adds_dependencies() -> None:
    assert closure(["model-packages"]) == ("core", "model-management", "model-packages")
    assert closure(["security-strict"]) == ("core", "security-baseline", "security-standard", "security-strict")


# Each row: a model id and how it parses (None: refused).
@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("smollm2", ModelRef("smollm2")),
        ("smollm2@1.0.0", ModelRef("smollm2", version="1.0.0")),
        ("smollm2@1.0.0-rc.1+b2", ModelRef("smollm2", version="1.0.0-rc.1+b2")),
        ("smollm2@sha256:" + "0" * 64, ModelRef("smollm2", digest="sha256:" + "0" * 64)),
        ("smollm2@latest", None),  # tags are not versions
        ("smollm2@sha256:abc", None),  # truncated digest
        ("SmolLM2", ModelRef("SmolLM2")),  # case is kept and significant, as hub ids write it
        ("Qwen/Qwen2.5-7B-Instruct", ModelRef("Qwen/Qwen2.5-7B-Instruct")),  # org/name
        ("llama3.1:8b", ModelRef("llama3.1:8b")),  # name:tag
        ("Qwen/Qwen2.5-7B-Instruct@1.0.0", ModelRef("Qwen/Qwen2.5-7B-Instruct", version="1.0.0")),  # pins still work
        ("org//name", None),  # empty segment
        ("org/../name", None),  # dot segments could walk a path
        ("/abs/path", None),  # a file-system path is not a name
        ("name/", None),  # trailing separator
        ("a b", None),  # whitespace
        ("a" * 257, None),  # over 256 characters
        ("a@1.0.0@2.0.0", None),  # one pin at most
        ("", None),
    ],
)
def test_model_id_syntax(text: str, parsed: ModelRef | None) -> None:
    if parsed is None:
        with pytest.raises(ValueError):
            ModelRef.parse(text)
    else:
        assert ModelRef.parse(text) == parsed
        assert str(parsed) == text


def test_the_audit_chain_worked_example_in_the_spec_reproduces() -> None:
    """spec/src/10-security.md shows one event, its canonical form and its hash: all three must match the code."""
    import re
    from pathlib import Path

    from llmos_std.canonical import canonicalize
    from llmos_std.security import GENESIS_HASH, audit_event_hash

    text = (Path(__file__).resolve().parents[2] / "spec" / "src" / "10-security.md").read_text(encoding="utf-8")
    event = {"id": "evt_00000000", "object": "llmos.audit_event", "seq": 0, "time": 1767225600, "actor": "prn_admin", "key_id": "key_3kT9wq",
             "request_id": "req_6f1c2e9a", "operation": "create_key", "target": None, "outcome": "success", "status": 201, "prev_hash": GENESIS_HASH}
    assert canonicalize(event).decode() in text.split("```text\n", 1)[1].split("\n```", 1)[0]
    shown = re.search(r"its `hash` is `([0-9a-f]{64})`", text)
    assert shown is not None and shown.group(1) == audit_event_hash(event)


def test_every_field_of_the_openai_sdk_requests_has_a_disposition() -> None:
    """Pinned to the openai SDK in the dev dependencies: a field it adds must get a row (honoured, metadata or gated)."""
    from openai.types import completion_create_params, embedding_create_params
    from openai.types.chat import completion_create_params as chat_params

    from llmos_std.parameters import CHAT, COMPLETION, EMBEDDING, disposition_of

    sdk = {
        CHAT: set(chat_params.CompletionCreateParamsBase.__annotations__) | {"stream"},
        COMPLETION: set(completion_create_params.CompletionCreateParamsBase.__annotations__) | {"stream"},
        EMBEDDING: set(embedding_create_params.EmbeddingCreateParams.__annotations__),
    }
    missing = {op: sorted(f for f in fields if disposition_of(op, f) is None) for op, fields in sdk.items()}
    assert missing == {CHAT: [], COMPLETION: [], EMBEDDING: []}
