"""What the kit's rule-based state machines share: a tally of examples and steps, and failure recording."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.errors import HypothesisException
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from conformance.verdicts import CheckFailed, CheckOutcome, KitError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Tally:
    examples: int = 0
    steps: int = 0
    failures: list[CheckFailed] = field(default_factory=list)


def recorded(tally: Tally, context: Callable[[Any], dict[str, Any]] = lambda machine: {}) -> Callable[[F], F]:
    """Keep the first CheckFailed with the steps that led to it (after ``context`` of the machine),
    before hypothesis replays the example."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except CheckFailed as exc:
                if exc.example is None:
                    exc.example = {**context(self), "steps": list(self.trace)}
                tally.failures.append(exc)
                raise

        return cast(F, run)

    return wrap


def run_machine(machine: type[RuleBasedStateMachine], tally: Tally, *, seed_value: int, examples: int, steps: int) -> CheckOutcome:
    """Run a state machine quietly under the kit's seed; the first recorded failure is the verdict."""
    config = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None, derandomize=False,
        verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate),
    )
    try:
        run_state_machine_as_test(seed(seed_value)(machine), settings=config)
    except CheckFailed as exc:
        raise (tally.failures[0] if tally.failures else exc) from None
    except (HypothesisException, BaseExceptionGroup) as exc:
        if tally.failures:
            raise tally.failures[0] from None
        raise KitError(f"hypothesis: {exc}") from exc
    if tally.failures:
        raise tally.failures[0]
    return CheckOutcome(examples=tally.examples, triggered=tally.steps)
