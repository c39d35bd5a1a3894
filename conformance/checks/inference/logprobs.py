"""Logprobs (LLMOS-LOGP-001, -002): one entry per completion token, well-formed, greedy choices on top."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from conformance.context import Context
from conformance.judging import ok_json
from conformance.properties import run_property
from conformance.registry import check
from conformance.streams import open_stream
from conformance.traffic import PROMPTS, feature_model, post
from conformance.verdicts import CheckFailed, CheckOutcome
from conformance.wire import Exchange

TOLERANCE = 1e-6


def judge_entries(exchange: Exchange, entries: Any, tokens: int, top: int, greedy: bool) -> None:
    if not isinstance(entries, list) or len(entries) != tokens:
        raise CheckFailed(f"logprobs.content with one entry per completion token ({tokens})", f"{len(entries) if isinstance(entries, list) else entries!r} entries", exchange=exchange)
    for i, entry in enumerate(entries):
        alternatives = entry.get("top_logprobs") or []
        values = [a["logprob"] for a in alternatives]
        if entry["logprob"] > 0 or any(v > 0 for v in values):
            raise CheckFailed("logprobs at most 0", f"entry {i}: {entry['logprob']}, {values}", exchange=exchange)
        if len(alternatives) != top:
            raise CheckFailed(f"{top} top_logprobs per token", f"entry {i}: {len(alternatives)}", exchange=exchange)
        if values != sorted(values, reverse=True):
            raise CheckFailed("top_logprobs most likely first", f"entry {i}: {values}", exchange=exchange)
        if greedy and alternatives and (alternatives[0]["token"] != entry["token"] or abs(values[0] - entry["logprob"]) > TOLERANCE):
            raise CheckFailed("at temperature 0, each chosen token first among its alternatives", f"entry {i}: chose {entry['token']!r} ({entry['logprob']}), top {alternatives[0]}", exchange=exchange)


@check("chat_logprobs")
def chat_logprobs(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "logprobs")["id"]
    cases = st.tuples(st.sampled_from(PROMPTS), st.integers(0, 5), st.booleans())

    def prop(case: tuple[str, int, bool]) -> bool:
        prompt, top, streamed = case
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": ctx.settings.max_tokens,
                "temperature": 0, "seed": ctx.settings.seed, "logprobs": True, "top_logprobs": top}
        if not streamed:
            exchange = post(ctx, "create_chat_completion", body)
            answer = ok_json(exchange, "ChatCompletionResponse")
            judge_entries(exchange, (answer["choices"][0].get("logprobs") or {}).get("content"), answer["usage"]["completion_tokens"], top, True)
            return True
        stream = open_stream(ctx, "create_chat_completion", {**body, "stream_options": {"include_usage": True}})
        usage = next((p["usage"] for p in stream.payloads if isinstance(p, dict) and p.get("usage")), None)
        if usage is None:
            raise CheckFailed("a usage chunk (include_usage)", "none", exchange=stream.exchange)
        entries = [e for p in stream.payloads if isinstance(p, dict) for c in p.get("choices") or [] for e in ((c.get("logprobs") or {}).get("content") or [])]
        judge_entries(stream.exchange, entries, usage["completion_tokens"], top, True)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="requests with logprobs")


@check("completion_logprobs")
def completion_logprobs(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "logprobs", base="text-generation")["id"]
    cases = st.tuples(st.sampled_from(PROMPTS), st.integers(0, 5))

    def prop(case: tuple[str, int]) -> bool:
        prompt, top = case
        body = {"model": model, "prompt": prompt, "max_tokens": ctx.settings.max_tokens, "temperature": 0, "logprobs": top}
        exchange = post(ctx, "create_completion", body)
        answer = ok_json(exchange, "CompletionResponse")
        tokens = answer["usage"]["completion_tokens"]
        legacy = answer["choices"][0].get("logprobs") or {}
        lists = {k: legacy.get(k) for k in ("tokens", "token_logprobs", "top_logprobs", "text_offset")}
        if any(not isinstance(v, list) or len(v) != tokens for v in lists.values()):
            raise CheckFailed(f"tokens, token_logprobs, top_logprobs and text_offset with {tokens} elements each",
                              repr({k: (len(v) if isinstance(v, list) else v) for k, v in lists.items()}), exchange=exchange)
        for i, alternatives in enumerate(lists["top_logprobs"] or []):
            if not isinstance(alternatives, dict) or len(alternatives) > top or (top and not alternatives):
                raise CheckFailed(f"up to {top} alternatives per token", f"entry {i}: {alternatives!r}", exchange=exchange)
        if any(v is not None and v > 0 for v in lists["token_logprobs"] or []):
            raise CheckFailed("token_logprobs at most 0", repr(lists["token_logprobs"]), exchange=exchange)
        offsets = lists["text_offset"] or []
        if offsets != sorted(offsets):
            raise CheckFailed("text_offset non-decreasing", repr(offsets), exchange=exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="completions with logprobs")
