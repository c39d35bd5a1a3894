"""What is loaded and what serves: version states, lifecycle actions in the background, leases.

The registry says what is installed and which version is active; this module owns what lives
only in memory: loaded models, states between polls, and in-flight counts for draining.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from llmos_std.errors import ErrorDetail, LLMOSError
from llmos_std.management import ALLOWED_FROM, LifecycleAction, ModelVersion
from llmos_std.models import ModelRef, VersionState

from reference_impl.registry import InstalledVersion, Registry

log = logging.getLogger("llmos.runtime")


class Closable(Protocol):
    def close(self) -> None: ...


Loader = Callable[[InstalledVersion], Closable]
"""Loads an installed version's package into a servable model (the engine, in production)."""


@dataclass
class _Slot:
    state: VersionState = "installed"
    changed_at: int = field(default_factory=lambda: int(time.time()))
    error: ErrorDetail | None = None
    model: Closable | None = None
    in_flight: int = 0
    attempt: object | None = None
    """The load now in progress; a load that outlived ``max_load_seconds`` finds it replaced."""


@dataclass
class Lease:
    """A request's hold on a loaded version; unload waits until every lease is released."""

    version: InstalledVersion
    model: Closable
    _release: Callable[[], None]
    _done: bool = False

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._release()


class Runtime:
    def __init__(self, registry: Registry, loader: Loader, *, max_load_seconds: float = 300.0) -> None:
        self._registry = registry
        self._loader = loader
        self._max_load_seconds = max_load_seconds
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ views

    def _slot(self, digest: str) -> _Slot:
        return self._slots.setdefault(digest, _Slot())

    def state(self, version: InstalledVersion) -> VersionState:
        with self._lock:
            return self._slot(version.digest).state

    def resource(self, version: InstalledVersion) -> ModelVersion:
        with self._lock:
            slot = self._slot(version.digest)
            active = self._registry.active_version(version.name)
            return ModelVersion(
                name=version.name, version=version.version, digest=version.digest, state=slot.state,
                active=active is not None and active.digest == version.digest,
                installed_at=version.installed_at, state_changed_at=slot.changed_at,
                owner=version.owner, error=slot.error,
            )

    def find(self, name: str, version: str) -> InstalledVersion:
        if not self._registry.versions(name):
            raise LLMOSError("model_not_found", f"model {name!r} is not installed", param="name")
        found = self._registry.find(name, version=version)
        if found is None:
            raise LLMOSError("version_not_found", f"model {name!r} has no version {version!r}", param="version")
        return found

    # ------------------------------------------------------------ serving

    def resolve(self, model_id: str) -> InstalledVersion:
        try:
            ref = ModelRef.parse(model_id)
        except ValueError as exc:
            raise LLMOSError("invalid_model_id", str(exc), param="model") from None
        if ref.version is None and ref.digest is None:
            found = self._registry.active_version(ref.name)
        else:
            found = self._registry.find(ref.name, version=ref.version, digest=ref.digest)
        if found is None:
            raise LLMOSError("model_not_found", f"the model {model_id!r} does not exist", param="model")
        return found

    def acquire(self, model_id: str) -> Lease:
        version = self.resolve(model_id)
        with self._lock:
            slot = self._slot(version.digest)
            if slot.state != "ready" or slot.model is None:
                raise LLMOSError("model_not_loaded", f"{version.name}@{version.version} is {slot.state}, not ready", param="model")
            slot.in_flight += 1
            model = slot.model

        def release() -> None:
            with self._lock:
                slot.in_flight -= 1
                self._lock.notify_all()

        return Lease(version, model, release)

    def loaded(self, version: InstalledVersion) -> Closable | None:
        with self._lock:
            slot = self._slot(version.digest)
            return slot.model if slot.state == "ready" else None

    # ------------------------------------------------------------ lifecycle

    def _begin(self, version: InstalledVersion, action: LifecycleAction, new_state: VersionState | None) -> _Slot:
        """Check the action is allowed now and move to its transient state, atomically."""
        slot = self._slot(version.digest)
        if slot.state not in ALLOWED_FROM[action]:
            raise LLMOSError("state_conflict", f"cannot {action} {version.name}@{version.version} while it is {slot.state}")
        if new_state is not None:
            self._set(slot, new_state)
        return slot

    @staticmethod
    def _set(slot: _Slot, state: VersionState, error: ErrorDetail | None = None) -> None:
        slot.state = state
        slot.error = error
        slot.changed_at = int(time.time())

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _load_into(self, version: InstalledVersion, slot: _Slot, *, then_activate: bool = False) -> bool:
        """Load under a deadline: the discovery document promises every load settles in max_load_seconds.

        A loader thread cannot be interrupted, so past the deadline the version is reported failed at
        once and whatever the late loader returns is closed instead of served.
        """
        attempt = object()
        with self._lock:
            slot.attempt = attempt
        deadline = threading.Timer(self._max_load_seconds, self._expire, args=(slot, attempt))
        deadline.daemon = True
        deadline.start()
        try:
            model = self._loader(version)
        except Exception:  # noqa: BLE001 - any loader failure is a failed load, reported on the resource
            # The cause (with paths and exception names) goes to the log only; the resource says where to look.
            reference = secrets.token_hex(6)
            log.exception("loading %s@%s failed (reference %s)", version.name, version.version, reference)
            message = f"the model could not be loaded; the server log has the cause under reference {reference}"
            with self._lock:
                if slot.attempt is attempt:
                    slot.attempt = None
                    self._set(slot, "failed", ErrorDetail(message=message, type="server_error", code="engine_error"))
            return False
        finally:
            deadline.cancel()
        with self._lock:
            if slot.attempt is attempt:
                slot.attempt = None
                slot.model = model
                if then_activate:  # in the same critical section: no reader sees it ready but not yet active
                    self._registry.record_activation(version.name, version.version)
                self._set(slot, "ready")
                return True
        log.warning("%s@%s finished loading after its deadline; discarded", version.name, version.version)
        model.close()
        return False

    def _expire(self, slot: _Slot, attempt: object) -> None:
        with self._lock:
            if slot.attempt is attempt:
                slot.attempt = None
                message = f"load did not finish within max_load_seconds ({self._max_load_seconds:g} s)"
                self._set(slot, "failed", ErrorDetail(message=message, type="server_error", code="engine_error"))

    def load(self, version: InstalledVersion, *, wait: bool = False) -> ModelVersion:
        with self._lock:
            slot = self._begin(version, "load", "loading")
        self._run(lambda: self._load_into(version, slot), f"load-{version.digest[7:19]}", wait)
        return self.resource(version)

    def activate(self, version: InstalledVersion, *, wait: bool = False) -> ModelVersion:
        with self._lock:
            slot = self._slot(version.digest)
            if slot.state == "ready":
                self._registry.record_activation(version.name, version.version)
                return self.resource(version)
            slot = self._begin(version, "activate", "loading")

        self._run(lambda: self._load_into(version, slot, then_activate=True), f"activate-{version.digest[7:19]}", wait)
        return self.resource(version)

    def rollback(self, name: str, *, wait: bool = False) -> ModelVersion:
        if not self._registry.versions(name):
            raise LLMOSError("model_not_found", f"model {name!r} is not installed", param="name")
        previous = self._registry.previous_version(name)
        if previous is None:
            raise LLMOSError("no_previous_version", f"model {name!r} has no earlier active version")
        return self.activate(previous, wait=wait)

    def unload(self, version: InstalledVersion, *, wait: bool = False) -> ModelVersion:
        with self._lock:
            slot = self._begin(version, "unload", "unloading")

        def work() -> None:
            with self._lock:
                while slot.in_flight > 0:
                    self._lock.wait()
                model, slot.model = slot.model, None
            if model is not None:
                model.close()
            with self._lock:
                self._set(slot, "installed")

        self._run(work, f"unload-{version.digest[7:19]}", wait)
        return self.resource(version)

    def delete(self, version: InstalledVersion) -> None:
        with self._lock:
            self._begin(version, "delete", None)
            active = self._registry.active_version(version.name)
            others = [v for v in self._registry.versions(version.name) if v.digest != version.digest]
            if active is not None and active.digest == version.digest and others:
                raise LLMOSError("state_conflict", f"{version.name}@{version.version} is the active version; activate another first")
            self._registry.delete_version(version.name, version.version)
            self._slots.pop(version.digest, None)

    def _run(self, work: Callable[[], object], name: str, wait: bool) -> None:
        if wait:
            work()
        else:
            self._spawn(lambda: None if work() else None, name)

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)
        with self._lock:
            models = [slot.model for slot in self._slots.values() if slot.model is not None]
            for slot in self._slots.values():
                slot.model = None
        for model in models:
            model.close()
