"""The audit log: one JSON line per event, hash-chained, appended and fsynced before the response goes out.

Each event's ``hash`` is ``llmos_std.security.audit_event_hash`` of the event, which covers the
previous event's hash, so removing, reordering or editing a line breaks every later link.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from pydantic import JsonValue

from llmos_std.errors import LLMOSError
from llmos_std.security import GENESIS_HASH, AuditEvent, AuditVerification, audit_event_hash

PAGE_DEFAULT = 100
PAGE_MAX = 1000


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._events: list[dict[str, JsonValue]] = []
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                self._events = [json.loads(line) for line in handle if line.strip()]

    def record(self, *, actor: str, key_id: str | None, operation: str, target: str | None, status: int, request_id: str) -> AuditEvent:
        with self._lock:
            seq = len(self._events)
            event: dict[str, JsonValue] = {
                "id": f"evt_{seq:08d}", "object": "llmos.audit_event", "seq": seq, "time": int(time.time()),
                "actor": actor, "key_id": key_id, "request_id": request_id, "operation": operation, "target": target,
                "outcome": "success" if status < 400 else "failure", "status": status,
                "prev_hash": str(self._events[-1]["hash"]) if self._events else GENESIS_HASH,
            }
            event["hash"] = audit_event_hash(event)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event, separators=(",", ":")) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self._events.append(event)
            return AuditEvent.model_validate(event)

    def page(self, cursor: str | None, limit: int) -> tuple[list[AuditEvent], str | None]:
        """Events after ``cursor`` (oldest first); the cursor names the last sequence number seen."""
        start = 0
        if cursor is not None:
            if not cursor.startswith("after-") or not cursor[6:].isdigit():
                raise LLMOSError("cursor_invalid", "the cursor is not one this server issued", param="cursor")
            start = int(cursor[6:]) + 1
        with self._lock:
            chunk = self._events[start:start + limit]
            more = start + limit < len(self._events)
        events = [AuditEvent.model_validate(e) for e in chunk]
        return events, (f"after-{events[-1].seq}" if events and more else None)

    def verify(self) -> AuditVerification:
        with self._lock:
            events = list(self._events)
        prev = GENESIS_HASH
        for event in events:
            if event.get("prev_hash") != prev or audit_event_hash(event) != event.get("hash"):
                return AuditVerification(valid=False, events=len(events), first_bad_seq=int(str(event.get("seq", 0))))
            prev = str(event["hash"])
        return AuditVerification(valid=True, events=len(events))
