"""embeddings: one vector per input in order, base64 equal to float, usage, dimensions."""

from __future__ import annotations

import base64
import re
import binascii
import math
import struct
from typing import Any

from hypothesis import strategies as st

from llmos_std.models import DIGEST_PATTERN

from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.properties import run_property
from conformance.registry import check
from conformance.traffic import available_ops, post
from conformance.verdicts import CheckFailed, CheckOutcome, Skip

WORDS = ("alpha", "beta", "the cat sat", "hello world", "embeddings are vectors", "a", "zebra crossing")
inputs = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4) | st.sampled_from(WORDS)


def _model(ctx: Context) -> dict[str, Any]:
    if "create_embedding" not in available_ops(ctx):
        raise Skip(ctx.plan.skipped_capabilities.get("embeddings", "no embeddings model"))
    return ctx.model("embeddings")


def _embed(ctx: Context, body: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    exchange = post(ctx, "create_embedding", body)
    return exchange, ok_json(exchange, "EmbeddingResponse")


@check("embeddings_one_per_input")
def embeddings_one_per_input(ctx: Context) -> CheckOutcome:
    model = _model(ctx)

    def prop(texts: list[str] | str) -> bool:
        exchange, answer = _embed(ctx, {"model": model["id"], "input": texts})
        count = 1 if isinstance(texts, str) else len(texts)
        indices = [d["index"] for d in answer["data"]]
        if indices != list(range(count)):
            raise CheckFailed(f"{count} embeddings with index 0..{count - 1} in order", f"indices {indices}", exchange=exchange)
        sizes = {len(d["embedding"]) if isinstance(d["embedding"], list) else -1 for d in answer["data"]}
        if len(sizes) != 1 or -1 in sizes:
            raise CheckFailed("float vectors of one dimension", f"lengths {sorted(sizes)}", exchange=exchange)
        if isinstance(texts, list) and len(set(texts)) == len(texts) > 1:
            # Distinct inputs in a known order: each vector must be the one for its own input.
            single = _embed(ctx, {"model": model["id"], "input": texts[-1]})[1]["data"][0]["embedding"]
            if not _close(answer["data"][-1]["embedding"], single):
                raise CheckFailed("the vector at index i to be the one for input i", "the last vector differs from the last input's own vector", exchange=exchange)
        return True

    return run_property(ctx, inputs, prop, examples=ctx.settings.max_examples, what="embedding inputs")


def _close(a: list[float], b: list[float], tol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=tol, abs_tol=tol) for x, y in zip(a, b))


@check("embeddings_base64_matches")
def embeddings_base64_matches(ctx: Context) -> CheckOutcome:
    model = _model(ctx)

    def prop(texts: list[str] | str) -> bool:
        _, floats = _embed(ctx, {"model": model["id"], "input": texts, "encoding_format": "float"})
        exchange, encoded = _embed(ctx, {"model": model["id"], "input": texts, "encoding_format": "base64"})
        for want, got in zip(floats["data"], encoded["data"], strict=False):
            raw = got["embedding"]
            if not isinstance(raw, str):
                raise CheckFailed("a base64 string", type(raw).__name__, exchange=exchange)
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise CheckFailed("valid base64", str(exc), exchange=exchange) from None
            if len(data) % 4:
                raise CheckFailed("a whole number of float32 values", f"{len(data)} bytes", exchange=exchange)
            vector = list(struct.unpack(f"<{len(data) // 4}f", data))
            if not _close(vector, want["embedding"], 1e-5):
                raise CheckFailed("base64 decoding (little-endian float32) to the float answer", f"index {got['index']} differs", exchange=exchange)
        if len(floats["data"]) != len(encoded["data"]):
            raise CheckFailed("as many base64 vectors as float ones", f"{len(encoded['data'])} vs {len(floats['data'])}", exchange=exchange)
        return True

    return run_property(ctx, inputs, prop, examples=ctx.settings.max_examples, what="embedding inputs")


@check("embeddings_usage")
def embeddings_usage(ctx: Context) -> CheckOutcome:
    model = _model(ctx)

    def prop(texts: list[str] | str) -> bool:
        exchange, answer = _embed(ctx, {"model": model["id"], "input": texts})
        usage = answer["usage"]
        if usage["prompt_tokens"] <= 0 or usage["prompt_tokens"] != usage["total_tokens"]:
            raise CheckFailed("prompt_tokens > 0 and equal to total_tokens", repr(usage), exchange=exchange)
        return True

    return run_property(ctx, inputs, prop, examples=ctx.settings.max_examples, what="embedding inputs")


@check("embeddings_dimensions")
def embeddings_dimensions(ctx: Context) -> CheckOutcome:
    model = _model(ctx)
    declared = ctx.plan.declared_capabilities(model)
    if declared is None:
        raise Skip(f"the target declares no capabilities for {model['id']!r}, so it had no way to say whether it honours `dimensions`")
    if "dimensions" not in declared:
        expect_error(post(ctx, "create_embedding", {"model": model["id"], "input": "hello", "dimensions": 8}), ("unsupported_parameter",), param="dimensions")
        return CheckOutcome()
    full = int(model.get("dimensions") or 0)
    count = 0
    for wanted in sorted({1, max(1, full // 2), max(1, full - 1)}):
        exchange, answer = _embed(ctx, {"model": model["id"], "input": ["hello", "world"], "dimensions": wanted})
        sizes = [len(d["embedding"]) for d in answer["data"]]
        if any(size != wanted for size in sizes):
            raise CheckFailed(f"vectors of {wanted} dimensions", f"lengths {sizes}", exchange=exchange)
        count += 1
    return CheckOutcome(examples=count, triggered=count)


@check("embeddings_dimensions_declared")
def embeddings_dimensions_declared(ctx: Context) -> CheckOutcome:
    model = _model(ctx)
    exchange, answer = _embed(ctx, {"model": model["id"], "input": "hello"})
    length = len(answer["data"][0]["embedding"])
    if model.get("dimensions") != length:
        raise CheckFailed(f"dimensions {length} in the models list (the vector length)", repr(model.get("dimensions")), exchange=exchange)
    return CheckOutcome()


@check("embeddings_digest_header")
def embeddings_digest_header(ctx: Context) -> CheckOutcome:
    model = _model(ctx)
    exchange, _ = _embed(ctx, {"model": model["id"], "input": "hello"})
    header = exchange.served_digest
    # An absent header never matches, even when the model list states no digest either.
    if header is None or re.fullmatch(DIGEST_PATTERN, header) is None or header != model.get("digest"):
        raise CheckFailed(f"LLMOS-Model-Digest: {model.get('digest') or 'the package digest (sha256:<hex>)'}", repr(header), exchange=exchange)
    return CheckOutcome()
