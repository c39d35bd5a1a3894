"""The judge of LLMOS-HLTH-003 on readiness answers the reference server cannot give (it runs one engine)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks.core.discovery import replica_problems
from conformance.judging import schema_errors

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _replica(id_: str, state: str, models: list[str]) -> dict[str, Any]:
    return {"id": id_, "state": state, "models": models, "detail": None}


@pytest.mark.parametrize(
    ("replicas", "ready", "problems"),
    [
        # Every ready replica holds both ready versions; a restarting one may hold fewer: nothing wrong.
        ([_replica("r0", "ready", [A, B]), _replica("r1", "ready", [B, A]), _replica("r2", "restarting", [])], [A, B], 0),
        # A replica may hold more than the ready versions (one still loading elsewhere, say).
        ([_replica("r0", "ready", [A, B])], [A], 0),
        # A ready replica lacks a version the model list calls ready: requests routed to it would fail.
        ([_replica("r0", "ready", [A, B]), _replica("r1", "ready", [A])], [A, B], 1),
        # Two replicas under one id cannot be told apart.
        ([_replica("r0", "ready", [A]), _replica("r0", "starting", [])], [A], 1),
    ],
)
def test_replica_problems(replicas: list[dict[str, Any]], ready: list[str], problems: int) -> None:
    assert schema_errors("Health", {"object": "llmos.health", "status": "ok", "detail": None, "replicas": replicas}) == []
    assert len(replica_problems(replicas, ready)) == problems


def test_the_health_schema_refuses_unknown_states_and_non_digests() -> None:
    for replica in (_replica("r0", "degraded", []), _replica("r0", "ready", ["tiny-llama"])):
        assert schema_errors("Health", {"object": "llmos.health", "status": "ok", "detail": None, "replicas": [replica]})
    # Without replicas (one engine), or with null, the answer is as before.
    assert schema_errors("Health", {"object": "llmos.health", "status": "ok", "detail": None}) == []
    assert schema_errors("Health", {"object": "llmos.health", "status": "ok", "detail": None, "replicas": None}) == []
