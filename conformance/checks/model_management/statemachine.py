"""LLMOS-MGMT-003 as a hypothesis state machine: random lifecycle sequences against a model of the registry.

Every rule acts over the wire, follows 202 answers to settled states (each poll judged against the
lifecycle table), and predicts the answer: allowed actions settle, refused ones are 409 and change
nothing. After every step the model resource must equal the prediction: states, active flag, history.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import cast

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from llmos_std.management import ALLOWED_FROM, LifecycleAction
from llmos_std.operations import LLMOS_BASE

from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.registry import check
from conformance.lifecycle_driver import (
    FAILING_VERSION,
    Subject,
    discard,
    get_model,
    install,
    package,
    perform,
    rollback,
    serve,
    settle,
    version_path,
)
from conformance.machines import Tally, recorded as record_failures, run_machine
from conformance.verdicts import CheckFailed, CheckOutcome, Skip

GOOD = ("1.0.0", "2.0.0")
POOL = (*GOOD, FAILING_VERSION)
STEPS = 15


@dataclass
class Registry:
    """What the kit expects the server to hold for one model name."""

    states: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)

    @property
    def active(self) -> str | None:
        return next((v for v in reversed(self.history) if v in self.states), None)

    def previous(self) -> str | None:
        current = self.active
        return next((v for v in reversed(self.history) if v in self.states and v != current), None)


def _machine(ctx: Context, tally: Tally) -> type[RuleBasedStateMachine]:
    recorded = record_failures(tally, lambda machine: {"model": machine.name})
    serving = "inference" in ctx.plan.claimed

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            tally.examples += 1
            self.name = ctx.name(f"sm{tally.examples}")
            ctx.cleanup.append(functools.partial(discard, ctx, self.name))
            self.model = Registry()
            self.digests: dict[str, str] = {}
            self.trace: list[str] = []
            self.subject = Subject(self.name, list(GOOD), self.digests, own=True, op="create_chat_completion")

        def _step(self, text: str) -> None:
            tally.steps += 1
            self.trace.append(text)

        def _refused(self, method: str, path: str, code: str) -> None:
            expect_error(ctx.wire.request(method, path, auth="admin"), (code,))

        def _act(self, version: str, action: str) -> None:
            self._step(f"{action} {version}")
            state = self.model.states[version]
            if state not in ALLOWED_FROM[cast(LifecycleAction, action)]:
                self._refused("POST", f"{version_path(self.name, version)}/{action}", "state_conflict")
                return
            end = perform(ctx, self.name, version, action).resource
            self.model.states[version] = end["state"]
            if action == "activate" and end["state"] == "ready":
                self.model.history.append(version)

        # ------------------------------------------------------------ rules

        @initialize()
        def install_pool(self) -> None:
            for version in POOL:
                self.install(version)

        @rule(version=st.sampled_from(POOL))
        @recorded
        def install(self, version: str) -> None:
            if version in self.model.states:
                return
            self._step(f"install {version}")
            index = 0 if version == FAILING_VERSION else GOOD.index(version) + 1
            pkg = package(ctx, self.name, version, index=index, loadable=version != FAILING_VERSION)
            self.digests[version] = pkg.digest
            created = install(ctx, pkg)
            if created["state"] != "installed":
                raise CheckFailed(f"{self.name}@{version} starting its lifecycle in 'installed'", repr(created["state"]), exchange=ctx.wire.last)
            self.model.states[version] = "installed"

        @precondition(lambda self: bool(self.model.states))
        @rule(version=st.sampled_from(POOL), action=st.sampled_from(("load", "unload", "activate")))
        @recorded
        def act(self, version: str, action: str) -> None:
            # Re-activating the active version is not exercised: whether it is recorded again is left open.
            if version in self.model.states and not (action == "activate" and version == self.model.active):
                self._act(version, action)

        @precondition(lambda self: bool(self.model.states))
        @rule()
        @recorded
        def roll_back(self) -> None:
            self._step("rollback")
            target = self.model.previous()
            if target is None:
                self._refused("POST", f"{LLMOS_BASE}/models/{self.name}/rollback", "no_previous_version")
                return
            answer = rollback(ctx, self.name)
            if answer["version"] != target:
                raise CheckFailed(f"rollback re-activating {target} (history {self.model.history})", f"it answered with {answer['version']}", exchange=ctx.wire.last)
            before = self.model.states[target]
            end = settle(ctx, self.name, target, "activate", before, answer).resource
            self.model.states[target] = end["state"]
            if end["state"] == "ready":
                self.model.history.append(target)

        @precondition(lambda self: bool(self.model.states))
        @rule(version=st.sampled_from(POOL))
        @recorded
        def delete(self, version: str) -> None:
            if version not in self.model.states:
                return
            if version == self.model.active and len(self.model.states) == 1:
                return  # removing the last, active version removes the model: left to the cleanup
            self._step(f"delete {version}")
            allowed = self.model.states[version] in ALLOWED_FROM["delete"] and version != self.model.active
            path = version_path(self.name, version)
            if not allowed:
                self._refused("DELETE", path, "state_conflict")
                return
            ok_json(ctx.wire.request("DELETE", path, auth="admin"), "DeletedObject")
            del self.model.states[version]

        @precondition(lambda self: serving and bool(self.model.states))
        @rule(pick=st.sampled_from((None, *POOL)))
        @recorded
        def serve(self, pick: str | None) -> None:
            model_id = self.name if pick is None else f"{self.name}@{pick}"
            self._step(f"serve {model_id}")
            version = self.model.active if pick is None else pick
            exchange = serve(ctx, self.subject, model_id)
            if version is None or version not in self.model.states:
                codes = ("model_not_found", "model_not_loaded") if pick is None and self.model.states else ("model_not_found",)
                expect_error(exchange, codes)
            elif self.model.states[version] != "ready":
                expect_error(exchange, ("model_not_loaded",))
            else:
                ok_json(exchange)
                if exchange.served_digest != self.digests[version]:
                    raise CheckFailed(f"{model_id} served by {version} ({self.digests[version]})", f"LLMOS-Model-Digest {exchange.served_digest}", exchange=exchange)

        # ------------------------------------------------------------ invariants

        @invariant()
        @recorded
        def matches_model(self) -> None:
            if not self.model.states:
                exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/models/{self.name}", auth="admin")
                if exchange.status != 404:
                    expect_error(exchange, ("model_not_found",))
                return
            seen = get_model(ctx, self.name)
            states = {v["version"]: (v["state"], v["active"]) for v in seen["versions"]}
            active = self.model.active
            expected = {v: (s, v == active) for v, s in self.model.states.items()}
            history = [h["version"] for h in seen["history"]]
            if states != expected or seen["active_version"] != active or history != self.model.history:
                raise CheckFailed(
                    f"after {' ; '.join(self.trace[-3:])}: versions {expected}, active {active}, history {self.model.history}",
                    f"versions {states}, active {seen['active_version']}, history {history}", exchange=ctx.wire.last,
                )

        def teardown(self) -> None:
            discard(ctx, self.name)

    return Lifecycle


@check("lifecycle_state_machine")
def lifecycle_state_machine(ctx: Context) -> CheckOutcome:
    if "model-packages" not in ctx.plan.claimed:
        raise Skip("the state machine installs, breaks and deletes versions of its own; the target does not claim model-packages")
    package(ctx, ctx.name("sm-probe"), GOOD[0], index=1)  # Skip early when the kit cannot build for this target
    tally = Tally()
    # Each example is a fresh model name and up to STEPS lifecycle steps.
    return run_machine(_machine(ctx, tally), tally, seed_value=ctx.settings.seed, examples=ctx.settings.max_examples, steps=STEPS)

