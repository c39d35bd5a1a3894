"""Hypothesis properties against a live target: examples, how many really triggered, shrunk failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from conformance.context import Context
from conformance.verdicts import CheckFailed, CheckOutcome, KitError, Skip


@dataclass
class Tally:
    examples: int = 0
    triggered: int = 0


def run_property(ctx: Context, strategy: st.SearchStrategy[Any], body: Callable[[Any], bool], *, examples: int, min_triggered: int = 1, what: str = "the property") -> CheckOutcome:
    """Run ``body`` (returns whether the example triggered) over ``examples`` hypothesis examples.

    A failing example is shrunk; the CheckFailed of the smallest one is raised. Fewer than
    ``min_triggered`` triggered examples make the check skipped, never passed.
    """
    tally = Tally()
    failures: list[CheckFailed] = []

    @seed(ctx.settings.seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink))
    @given(strategy)
    def prop(example: Any) -> None:
        tally.examples += 1
        try:
            if body(example):
                tally.triggered += 1
        except CheckFailed as exc:
            if exc.example is None:
                exc.example = example if _jsonable(example) else repr(example)
            failures.append(exc)
            raise

    try:
        prop()
    except CheckFailed:
        raise
    except (HypothesisException, BaseExceptionGroup) as exc:
        if failures:
            raise failures[-1] from None
        raise KitError(f"hypothesis: {exc}") from exc
    if tally.triggered < min(min_triggered, tally.examples or 1):
        raise Skip(f"{what} triggered in {tally.triggered} of {tally.examples} examples (minimum {min_triggered})")
    return CheckOutcome(examples=tally.examples, triggered=tally.triggered)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))
