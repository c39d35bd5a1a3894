"""Hypothesis properties against a live target: examples, how many really triggered, shrunk failures."""

from __future__ import annotations

import time
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
    deadline: float = float("inf")
    """Past it, examples are drawn but not sent: a target that hangs cannot hold the run for hours."""
    cut_short: bool = False


def run_property(ctx: Context, strategy: st.SearchStrategy[Any], body: Callable[[Any], bool], *, examples: int, min_triggered: int = 1, what: str = "the property") -> CheckOutcome:
    """Run ``body`` (returns whether the example triggered) over ``examples`` hypothesis examples.

    Two passes: every example is generated and judged, keeping each failure (so the report can show
    them all); when one failed, a second pass from the same seed stops at the first failure and
    shrinks it, and that smallest example leads the report. Fewer than ``min_triggered`` triggered
    examples make the check skipped, never passed.
    """
    budget = ctx.settings.property_budget_s
    tally = Tally(deadline=time.monotonic() + budget)
    seen: list[CheckFailed] = []
    _search(ctx, strategy, body, examples, tally, seen, shrink=False)
    if seen:
        shrunk: list[CheckFailed] = []
        _search(ctx, strategy, body, examples, Tally(deadline=time.monotonic() + budget / 2), shrunk, shrink=True)
        first = shrunk[-1] if shrunk else seen[0]
        others = [f for f in seen if repr(f.example) != repr(first.example)]
        first.others, first.total = others, max(len(seen), 1)
        raise first
    if tally.triggered < min(min_triggered, tally.examples or 1):
        raise Skip(f"{what} triggered in {tally.triggered} of {tally.examples} examples (minimum {min_triggered})")
    notes = [f"time budget of {budget:.0f} s reached after {tally.examples} of {examples} examples"] if tally.cut_short else []
    return CheckOutcome(examples=tally.examples, triggered=tally.triggered, notes=notes)


def _search(ctx: Context, strategy: st.SearchStrategy[Any], body: Callable[[Any], bool], examples: int, tally: Tally, failures: list[CheckFailed], *, shrink: bool) -> None:
    """One hypothesis pass; without ``shrink`` a failing example is recorded and the search goes on."""
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate)

    @seed(ctx.settings.seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck), phases=phases, report_multiple_bugs=False)
    @given(strategy)
    def prop(example: Any) -> None:
        if time.monotonic() > tally.deadline:
            tally.cut_short = True
            return
        tally.examples += 1
        try:
            if body(example):
                tally.triggered += 1
        except CheckFailed as exc:
            if exc.example is None:
                exc.example = example if _jsonable(example) else repr(example)
            failures.append(exc)
            if shrink:
                raise

    try:
        prop()
    except CheckFailed:
        return
    except (HypothesisException, BaseExceptionGroup) as exc:
        if failures:
            return
        raise KitError(f"hypothesis: {exc}") from exc


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))
