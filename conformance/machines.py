"""What the kit's rule-based state machines share: a tally of examples and steps, and failure recording."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from conformance.verdicts import CheckFailed

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
