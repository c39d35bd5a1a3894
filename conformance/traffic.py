"""Sending the inference operations: which ones a run can exercise, and the generations properties start from."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from llmos_std.operations import LLMOS_BASE

from conformance.bodies import CAPABILITY_OF, PATH_OF, PROFILE_OF, RESPONSE_OF, minimal_body
from conformance.context import Context
from conformance.judging import ok_json
from conformance.verdicts import CheckFailed, Skip
from conformance.wire import Exchange

PROMPTS = ("Once upon a time", "The capital of France is", "hello world", "1, 2, 3, 4,", "The quick brown fox", "def main():")
prompts = st.sampled_from(PROMPTS)

def still_ready(ctx: Context, after: Exchange | None) -> None:
    """The hostile request just sent must have left the target ready (counted in ``ctx.cache["hostile"]``)."""
    ctx.cache["hostile"] = ctx.cache.get("hostile", 0) + 1
    exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/health/ready", auth=None)
    if exchange.status != 200:
        raise CheckFailed("the server still ready after a hostile request", f"/health/ready answered {exchange.status}", exchange=after or exchange)


def available_ops(ctx: Context, *, generation_only: bool = False) -> list[str]:
    """The JSON inference operations the run can exercise (claimed profile and a model for it)."""
    ops: list[str] = []
    claimed = ctx.plan.claimed
    for op, cap in CAPABILITY_OF.items():
        if PROFILE_OF[op] in claimed and cap in ctx.plan.models and not (generation_only and op == "create_embedding"):
            ops.append(op)
    return ops


def first_op(ctx: Context, *, generation_only: bool = False) -> str:
    ops = available_ops(ctx, generation_only=generation_only)
    if not ops:
        raise Skip("no claimed inference or embeddings operation with a model to send it to")
    return ops[0]


def gen_ops(ctx: Context) -> list[str]:
    ops = available_ops(ctx, generation_only=True)
    if not ops:
        raise Skip("no text-generation or chat model to generate with")
    return ops


def post(ctx: Context, op: str, body: dict[str, Any], *, stream: bool = False) -> Exchange:
    return ctx.wire.request("POST", PATH_OF[op], json_body=body, stream=stream)


def texts_of(op: str, body: dict[str, Any]) -> dict[int, str]:
    key = "text" if op == "create_completion" else None
    out: dict[int, str] = {}
    for choice in body.get("choices", []):
        out[choice["index"]] = choice["text"] if key else (choice["message"].get("content") or "")
    return out


def generate(ctx: Context, op: str, prompt: str, **params: Any) -> tuple[Exchange, dict[str, Any]]:
    """A greedy, seeded, unstreamed generation (cached: properties derive triggers from it)."""
    model = ctx.model(CAPABILITY_OF[op])["id"]
    body = {**minimal_body(op, model, prompt, ctx.settings.max_tokens), "temperature": 0, "seed": ctx.settings.seed, **params}
    key = ("gen", op, repr(sorted(body.items())))
    if key not in ctx.cache:
        exchange = post(ctx, op, body)
        ctx.cache[key] = (exchange, ok_json(exchange, RESPONSE_OF[op]))
    return ctx.cache[key]  # type: ignore[no-any-return]


def deterministic(ctx: Context, op: str) -> bool:
    return ctx.model(CAPABILITY_OF[op]).get("determinism") in ("sequential", "batch_invariant")


def feature_model(ctx: Context, capability: str, *, base: str = "chat") -> dict[str, Any]:
    """A model declaring ``capability`` (and ``base``): the picked ``base`` model when it does, else a ready one."""
    picked = ctx.plan.models.get(base)
    if picked is not None and capability in (ctx.plan.declared_capabilities(picked) or ()):
        return picked
    listed = [m for m in ctx.plan.model_list if {capability, base} <= set(ctx.plan.declared_capabilities(m) or ())]
    ready = [m for m in listed if m.get("state") == "ready"] or listed
    if not ready:
        raise Skip(f"no listed model declares the {capability!r} capability with {base!r}")
    return ready[0]


def feature_budget(ctx: Context, wanted: int = 96) -> int:
    """``max_tokens`` for answers that must complete a JSON text: enough for the kit's small schemas,
    and at most an eighth of the model's context, which the tool descriptions also take from."""
    limit = ctx.limit("max_tokens")
    context = ctx.plan.models.get("chat", {}).get("context_length")
    budget = min(wanted, limit) if limit else wanted
    return max(16, min(budget, context // 8)) if isinstance(context, int) else budget
