"""What a check can conclude: the target failed, the kit broke, the check does not apply, or it was skipped.

Exceptions carry no requirement IDs: a check's requirements come from the registry, one place of truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
