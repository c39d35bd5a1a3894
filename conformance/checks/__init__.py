"""The check registry: ``@check("name")`` functions ``f(ctx) -> CheckOutcome``, plus what checks share.

A check's requirement IDs come from ``llmos_std.requirements`` (the one place of truth); a name that
the registry does not list is refused when the module is imported.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from llmos_std.errors import ERROR_CODES
from llmos_std.export import schema_files
from llmos_std.profiles import ProfileName
from llmos_std.requirements import REQUIREMENTS

from conformance.config import KitSettings
from conformance.plan import Plan
from conformance.verdicts import CheckFailed, CheckOutcome, KitError, Skip
from conformance.wire import Exchange, Wire

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


@dataclass
class Context:
    """What a check gets: the wire, the plan, the settings and a place to remember created resources."""

    wire: Wire
    plan: Plan
    settings: KitSettings
    run_id: str
    cache: dict[Any, Any] = field(default_factory=dict)
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def rng(self) -> random.Random:
        return random.Random(self.settings.seed)

    def model(self, capability: str) -> dict[str, Any]:
        picked = self.plan.models.get(capability)
        if picked is None:
            raise Skip(self.plan.skipped_capabilities.get(capability, f"no model with the {capability!r} capability"))
        return picked

    def limit(self, name: str) -> int | None:
        value = self.plan.limits.get(name)
        return value if isinstance(value, int) else None

    def name(self, suffix: str) -> str:
        return f"llmos-conformance-{self.run_id}-{suffix}"


# ---------------------------------------------------------------- judging the wire


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    return schema_files()


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = _schemas()[f"{name}.json"]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(name: str, document: Any) -> list[str]:
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors[:3]]


def validate(name: str, document: Any, exchange: Exchange | None = None) -> None:
    problems = schema_errors(name, document)
    if problems:
        raise CheckFailed(f"a body valid against {name}.json", "; ".join(problems), exchange=exchange)


def expect_status(exchange: Exchange, *statuses: int) -> None:
    if exchange.status not in statuses:
        want = " or ".join(str(s) for s in statuses)
        raise CheckFailed(f"status {want}", f"{exchange.status}: {exchange.body[:300]!r}", exchange=exchange)


def ok_json(exchange: Exchange, schema: str | None = None, status: int = 200) -> Any:
    expect_status(exchange, status)
    content_type = exchange.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        raise CheckFailed("Content-Type application/json", repr(content_type), exchange=exchange)
    body = exchange.json()
    if schema is not None:
        validate(schema, body, exchange)
    return body


def expect_error(exchange: Exchange, codes: tuple[str, ...], *, param: str | None = None, param_prefix: bool = False) -> dict[str, Any]:
    """The response is an error envelope with one of ``codes`` at the code's bound status."""
    statuses = sorted({ERROR_CODES[c].status for c in codes})
    if exchange.status not in statuses:
        raise CheckFailed(f"status {' or '.join(map(str, statuses))} with code {' or '.join(codes)}", f"{exchange.status}: {exchange.body[:300]!r}", exchange=exchange)
    body = exchange.json()
    validate("ErrorEnvelope", body, exchange)
    error = body["error"]
    if error.get("code") not in codes:
        raise CheckFailed(f"error code {' or '.join(codes)}", f"{error.get('code')!r} ({error.get('message')!r})", exchange=exchange)
    if param is not None:
        seen = error.get("param")
        good = seen == param or (param_prefix and isinstance(seen, str) and seen.startswith(param + "."))
        if not good:
            raise CheckFailed(f"param {param!r}", f"param {seen!r}", exchange=exchange)
    return dict(error)


# ---------------------------------------------------------------- hypothesis


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


def now() -> float:
    return time.time()
