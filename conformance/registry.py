"""The check registry: ``@check("name")`` functions ``f(ctx) -> CheckOutcome``, keyed by the names the requirements list.

A check's requirement IDs come from ``llmos_std.requirements`` (the one place of truth); a name that
the registry does not list is refused when the module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from llmos_std.profiles import ProfileName
from llmos_std.requirements import REQUIREMENTS

from conformance.verdicts import CheckOutcome, KitError

if TYPE_CHECKING:
    from conformance.context import Context

CheckFn = Callable[["Context"], CheckOutcome]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    fn: CheckFn
    requirements: tuple[str, ...]
    profile: ProfileName


CHECKS: dict[str, CheckSpec] = {}


@cache
def registry_checks() -> dict[str, tuple[str, ...]]:
    """Check name -> the requirement IDs that list it."""
    table: dict[str, list[str]] = {}
    for req in REQUIREMENTS:
        for name in req.checks:
            table.setdefault(name, []).append(req.id)
    return {name: tuple(ids) for name, ids in table.items()}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        ids = registry_checks().get(name)
        if not ids:
            raise KitError(f"check {name!r} is not named by any requirement in the registry")
        if name in CHECKS:
            raise KitError(f"check {name!r} registered twice")
        profile = next(r.profile for r in REQUIREMENTS if r.id == ids[0])
        CHECKS[name] = CheckSpec(name, fn, ids, profile)
        return fn

    return register


def load_checks() -> dict[str, CheckSpec]:
    """Import every check module so that the registry is complete."""
    from conformance.checks import embeddings, model_packages, responses, security_baseline, security_standard, security_strict, tasks  # noqa: F401
    from conformance.checks.core import discovery, errors, fuzzing  # noqa: F401
    from conformance.checks.data_management import datasets, isolation, pipelines, queries, statemachine as data_statemachine, versions  # noqa: F401
    from conformance.checks.inference import disconnect, generation, logprobs, overload, parameters, streaming, structured, tools  # noqa: F401
    from conformance.checks.model_management import lifecycle, serving, statemachine  # noqa: F401

    return dict(CHECKS)
