"""What a check can conclude: the target failed, the kit broke, the check does not apply, or it was skipped.

Exceptions carry no requirement IDs: a check's requirements come from the registry, one place of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any


class CheckFailed(Exception):
    """The target broke the property the check asserts (whatever it sent or failed to send)."""

    def __init__(self, expected: str, seen: str, *, exchange: Any = None, example: Any = None) -> None:
        super().__init__(f"expected {expected}; saw {seen}")
        self.expected = expected
        self.seen = seen
        self.exchange = exchange
        """The :class:`conformance.wire.Exchange` that showed it, for the curl line."""
        self.example = example
        self.others: list[CheckFailed] = []
        """Further failing examples of the same check (the report shows up to ten)."""
        self.total = 1
        """How many examples failed in all."""


class Failures:
    """Keeps a check going after a failing probe, so a vendor sees every failure in one run.

    ``with Failures() as failures:`` around the loop and ``with failures.each():`` around each probe;
    leaving the outer block raises the first failure carrying the others.
    """

    def __init__(self) -> None:
        self.seen: list[CheckFailed] = []

    @contextmanager
    def each(self) -> Iterator[None]:
        try:
            yield
        except CheckFailed as exc:
            self.seen.append(exc)

    def combined(self) -> CheckFailed:
        first = self.seen[0]
        first.others = self.seen[1:]
        first.total = len(self.seen)
        return first

    def __enter__(self) -> Failures:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None and self.seen:
            raise self.combined()


class KitError(Exception):
    """A bug in the kit, or the base URL unreachable: never the target's fault."""


class ConfigError(Exception):
    """Usage or configuration error (exit 2), including a MAJOR version mismatch."""


class Skip(Exception):
    """The check could not be triggered, or needs an input the run lacks; the message is the reason."""


@dataclass
class CheckOutcome:
    """What a passing check returns: how many examples ran and how many really exercised the property."""

    examples: int = 1
    triggered: int = 1
    notes: list[str] = field(default_factory=list)
