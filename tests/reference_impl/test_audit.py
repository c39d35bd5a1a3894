"""The audit log's hash chain (spec 10-security: audit events) and the per-key token bucket."""

from __future__ import annotations

import json
from pathlib import Path

from llmos_std.security import GENESIS_HASH, audit_event_hash
from reference_impl.audit import AuditLog
from reference_impl.ratelimit import RateLimiter


def _log(path: Path, n: int) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.record(actor="prn_a", key_id="key_1", operation="create_key", target=None, status=201 if i % 2 else 403, request_id=f"req{i}")
    return log


def test_events_chain_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 5)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert events[0]["prev_hash"] == GENESIS_HASH
    for prev, event in zip(events, events[1:]):
        assert event["prev_hash"] == prev["hash"] == audit_event_hash(prev)
    again = AuditLog(path)
    assert again.verify().valid and again.verify().events == 5
    again.record(actor="prn_a", key_id=None, operation="revoke_key", target="key_1", status=200, request_id="req5")
    assert AuditLog(path).verify().valid


# Each row: one way to tamper with line 2 (seq 2) of the log; every one must be found at seq 2.
TAMPERING = [
    lambda e: {**e, "status": 200},  # an edited field
    lambda e: {**e, "outcome": "success"},  # a denied call made to look allowed
    lambda e: {**e, "hash": "0" * 64},  # a forged hash
]


def test_tampering_is_found_where_it_happened(tmp_path: Path) -> None:
    for i, tamper in enumerate(TAMPERING):
        path = tmp_path / f"audit{i}.jsonl"
        _log(path, 5)
        lines = path.read_text().splitlines()
        lines[2] = json.dumps(tamper(json.loads(lines[2])))
        path.write_text("\n".join(lines) + "\n")
        result = AuditLog(path).verify()
        assert (result.valid, result.first_bad_seq) == (False, 2)
    path = tmp_path / "removed.jsonl"
    _log(path, 5)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # a removed event breaks the next link
    assert AuditLog(path).verify().first_bad_seq == 3


def test_pages_follow_cursors_to_the_end(tmp_path: Path) -> None:
    log = _log(tmp_path / "a.jsonl", 7)
    seen, cursor = [], None
    while True:
        events, cursor = log.page(cursor, 3)
        seen += [e.seq for e in events]
        if cursor is None:
            break
    assert seen == list(range(7))


def test_the_bucket_refuses_past_the_limit_and_refills() -> None:
    limiter = RateLimiter()
    decisions = [limiter.take("k", 3, now=100.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_after == 20  # one token a 20 s at 3 a minute
    assert limiter.take("other", 3, now=100.0).allowed  # keys do not share buckets
    assert limiter.take("k", 3, now=121.0).allowed
