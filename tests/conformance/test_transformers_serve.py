"""The kit against a real third-party server: `transformers serve` on a tiny model, in plain OpenAI mode.

Its model id is a local path with `/`; it declares no capabilities. Each verdict below is pinned, and
each fail is one the spec demands (noted per row), so a kit change that adds a false fail, or stops
catching a real one, shows up here.
"""

from __future__ import annotations

from pathlib import Path

from conformance.config import KitSettings
from conformance.runner import run
from tests.support.transformers_serve import transformers_serve

# Requirement -> verdict on `transformers serve` (transformers 5.x); every fail was checked by hand.
PINNED: dict[str, str] = {
    # LLMOS additions it does not have: discovery, health, the LLMOS model fields, digests, the version header.
    "LLMOS-DISC-001": "fail", "LLMOS-DISC-002": "fail", "LLMOS-DISC-003": "fail", "LLMOS-HLTH-001": "fail", "LLMOS-HLTH-002": "fail",
    "LLMOS-MOD-001": "fail", "LLMOS-INF-007": "fail",
    "LLMOS-DISC-004": "skipped",  # no discovery, so no declared limits
    "LLMOS-DISC-005": "fail",  # (SHOULD) no /llmos/v1/openapi.json: its /openapi.json is FastAPI's, open to all
    "LLMOS-HLTH-003": "skipped",  # (SHOULD) no readiness answer, so no replicas listed
    "LLMOS-MOD-003": "skipped",  # no version or digest listed, so no pinned id can be formed
    # OpenAI wire: an unknown model is a 400 {"detail": ...} ("Server is pinned to ..."), not 404 model_not_found.
    "LLMOS-MOD-002": "fail",
    "LLMOS-MOD-004": "fail",  # malformed ids: the same 400 without the error envelope
    "LLMOS-MOD-005": "fail",  # GET /v1/models/{id} is 404 {"detail": "Not Found"}: the SDK's models.retrieve fails
    "LLMOS-ERR-001": "fail",  # every error is FastAPI's {"detail": ...}, never {"error": {...}}
    "LLMOS-ERR-002": "skipped",  # no error carries a code at all
    "LLMOS-ERR-003": "fail",  # malformed JSON is 422, not 400 invalid_json
    "LLMOS-ERR-004": "fail",  # out-of-range values served with 200, or a text/plain 500
    "LLMOS-ERR-005": "fail",  # a text/plain body is 422, not 415
    "LLMOS-ERR-006": "pass",  # messages echo the model id, a path: public, so no leak
    "LLMOS-ERR-007": "fail",  # unknown routes: {"detail": "Not Found"}
    "LLMOS-ERR-009": "skipped",  # self-declared: unforeseen failures cannot be provoked over HTTP
    "LLMOS-ERR-008": "fail",  # a valid list prompt: 400 {"detail": "prompt must be a string."} without the envelope
    "LLMOS-PARAM-001": "fail",  # unknown fields: 422 {"detail": ...}, not 400 unsupported_parameter
    "LLMOS-PARAM-002": "skipped",  # declares no capabilities, so cannot be held to lacking one
    "LLMOS-PARAM-003": "pass", "LLMOS-PARAM-004": "pass",
    "LLMOS-INF-001": "pass", "LLMOS-INF-002": "pass", "LLMOS-INF-003": "pass",
    "LLMOS-INF-004": "fail",  # the stop string is left in the output (finish_reason "stop" is right)
    "LLMOS-INF-005": "fail",  # n=2 silently answers one choice
    "LLMOS-INF-006": "skipped", "LLMOS-STRM-003": "skipped",  # no determinism claimed
    "LLMOS-INF-008": "pass", "LLMOS-INF-009": "pass", "LLMOS-INF-011": "pass",
    "LLMOS-INF-010": "skipped",  # no context_length listed
    "LLMOS-INF-012": "skipped",  # declares no capabilities
    "LLMOS-INF-013": "skipped",  # declares no max_concurrent
    "LLMOS-STRM-001": "fail",  # streams end without data: [DONE]
    "LLMOS-STRM-002": "fail",  # chunks omit finish_reason (OpenAI sends null until the last)
    "LLMOS-STRM-004": "fail",  # usage arrives on a chunk with choices, and without include_usage
    "LLMOS-STRM-005": "skipped",  # no stream failed after its 200
    "LLMOS-STRM-006": "skipped",  # observed through an unload; no model-management
    # No model declares tools, structured-outputs or logprobs (it declares no capabilities at all).
    **{f"LLMOS-TOOL-00{i}": "skipped" for i in range(1, 6)}, **{f"LLMOS-SO-00{i}": "skipped" for i in range(1, 5)},
    "LLMOS-LOGP-001": "skipped", "LLMOS-LOGP-002": "skipped",
}


def test_the_kit_judges_transformers_serve_as_pinned(tiny_llama_dir: Path) -> None:
    with transformers_serve(tiny_llama_dir) as origin:
        report = run(KitSettings(openai_base_url=f"{origin}/v1", profiles=["inference"], max_examples=3, generation_examples=2, max_tokens=8, quiet=True))
    verdicts = {r.id: r.verdict for r in report.requirements if r.verdict != "unsupported"}
    assert [r.id for r in report.requirements if r.verdict == "kit_error"] == []
    assert report.target.models["chat"] == str(tiny_llama_dir.resolve())
    assert verdicts == PINNED
    wire = {s.surface: s.failed for s in report.surfaces}["openai-wire"]
    assert wire == ["LLMOS-MOD-002", "LLMOS-MOD-004", "LLMOS-MOD-005", "LLMOS-ERR-001", "LLMOS-ERR-008", "LLMOS-INF-004", "LLMOS-INF-005", "LLMOS-STRM-001", "LLMOS-STRM-002", "LLMOS-STRM-004"]
