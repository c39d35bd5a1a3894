"""inference, streamed: the SSE grammar of DESIGN section 6, chunk schemas, usage chunks and error events."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from llmos_std.sse import DataEvent, DoneEvent

from conformance.context import Context
from conformance.judging import ok_json, schema_errors, validate
from conformance.properties import run_property
from conformance.registry import check
from conformance.bodies import CAPABILITY_OF, CHUNK_OF, minimal_body, RESPONSE_OF
from conformance.traffic import deterministic, gen_ops, post, prompts, texts_of
from conformance.streams import Stream, ends_with_done, open_stream
from conformance.verdicts import CheckFailed, CheckOutcome, Skip


def _stream_cases(ctx: Context, usage: bool | None = None) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    ops = gen_ops(ctx)
    top = max(1, min(ctx.limit("max_n") or 2, 2))

    def body(op: str, prompt: str, n: int, usage: bool) -> tuple[str, dict[str, Any]]:
        b = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt, ctx.settings.max_tokens), "n": n, "seed": ctx.settings.seed}
        if usage:
            b["stream_options"] = {"include_usage": True}
        return op, b

    usages = st.booleans() if usage is None else st.just(usage)
    return st.builds(body, st.sampled_from(ops), prompts, st.integers(1, top), usages)


def _stream_property(ctx: Context, judge: Any, what: str, usage: bool | None = None) -> CheckOutcome:
    def prop(case: tuple[str, dict[str, Any]]) -> bool:
        op, body = case
        return bool(judge(op, body, open_stream(ctx, op, body)))

    return run_property(ctx, _stream_cases(ctx, usage), prop, examples=ctx.settings.generation_examples, what=what)


@check("stream_grammar")
def stream_grammar(ctx: Context) -> CheckOutcome:
    def judge(op: str, body: dict[str, Any], stream: Stream) -> bool:
        if stream.exchange.stream_error is not None:
            raise CheckFailed("only 'data: <json>' events, blank lines and ':' comments", stream.exchange.stream_error, exchange=stream.exchange)
        return True

    return _stream_property(ctx, judge, "streams")


@check("stream_ends_with_done")
def stream_ends_with_done(ctx: Context) -> CheckOutcome:
    def judge(op: str, body: dict[str, Any], stream: Stream) -> bool:
        if not ends_with_done(stream.exchange) or stream.exchange.stream_error is not None:
            tail = stream.exchange.body[-120:]
            raise CheckFailed("the stream ending with 'data: [DONE]' and a blank line", f"stream ended with {tail!r}" + (f" ({stream.exchange.stream_error})" if stream.exchange.stream_error else ""), exchange=stream.exchange)
        return True

    return _stream_property(ctx, judge, "streams")


@check("stream_chunks_valid")
def stream_chunks_valid(ctx: Context) -> CheckOutcome:
    def judge(op: str, body: dict[str, Any], stream: Stream) -> bool:
        for payload in stream.payloads:
            problems = schema_errors(CHUNK_OF[op], payload)
            if problems:
                raise CheckFailed(f"every chunk valid against {CHUNK_OF[op]}.json", "; ".join(problems) + f" in {json.dumps(payload)[:300]}", exchange=stream.exchange)
        n = body.get("n") or 1
        for index in range(n):
            reasons = stream.finish.get(index, [])
            if len(reasons) != 1:
                raise CheckFailed(f"exactly one finish_reason for choice {index}", f"{reasons}", exchange=stream.exchange)
        extra = sorted(set(stream.finish) - set(range(n)))
        if extra:
            raise CheckFailed(f"choice indices 0..{n - 1}", f"finish_reason for indices {extra}", exchange=stream.exchange)
        return True

    return _stream_property(ctx, judge, "streams")


@check("stream_equals_nonstream")
def stream_equals_nonstream(ctx: Context) -> CheckOutcome:
    ops = [op for op in gen_ops(ctx) if deterministic(ctx, op)]
    if not ops:
        raise Skip("no picked generation model claims sequential or batch_invariant determinism")
    cases = st.tuples(st.sampled_from(ops), prompts, st.integers(0, 2**31 - 1), st.sampled_from([0, 1.0]))

    def prop(case: tuple[str, str, int, float]) -> bool:
        op, prompt, seed, temperature = case
        body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt, ctx.settings.max_tokens), "seed": seed, "temperature": temperature}
        whole = ok_json(post(ctx, op, body), RESPONSE_OF[op])
        stream = open_stream(ctx, op, body)
        expected = texts_of(op, whole)
        seen = {i: stream.texts.get(i, "") for i in expected}
        if seen != expected:
            raise CheckFailed(f"the stream reassembling to the unstreamed answer {expected!r}", repr(seen), exchange=stream.exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="seeded streams")


@check("include_usage_chunk")
def include_usage_chunk(ctx: Context) -> CheckOutcome:
    def judge(op: str, body: dict[str, Any], stream: Stream) -> bool:
        wanted = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = [p for p in stream.payloads if isinstance(p, dict) and "error" not in p]
        carrying = [i for i, p in enumerate(chunks) if p.get("usage") is not None]
        if not wanted:
            if carrying:
                raise CheckFailed("no chunk with usage without include_usage", f"usage on chunk {carrying[0]}", exchange=stream.exchange)
            return True
        if len(carrying) != 1:
            raise CheckFailed("exactly one chunk carrying usage", f"{len(carrying)} chunks carry usage", exchange=stream.exchange)
        chunk = chunks[carrying[0]]
        if carrying[0] != len(chunks) - 1:
            raise CheckFailed("the usage chunk last before [DONE]", f"usage chunk at {carrying[0]} of {len(chunks)}", exchange=stream.exchange)
        if chunk.get("choices") != []:
            raise CheckFailed("choices [] on the usage chunk", repr(chunk.get("choices")), exchange=stream.exchange)
        usage = chunk["usage"]
        if not isinstance(usage, dict) or usage.get("total_tokens") != usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0):
            raise CheckFailed("usage adding up on the usage chunk", repr(usage), exchange=stream.exchange)
        return True

    outcome = _stream_property(ctx, judge, "streams with include_usage", usage=True)
    # And once without it: then no chunk may carry usage.
    op = gen_ops(ctx)[0]
    judge(op, minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"]), open_stream(ctx, op, minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])))
    outcome.examples += 1
    outcome.triggered += 1
    return outcome


@check("stream_error_event")
def stream_error_event(ctx: Context) -> CheckOutcome:
    """Judges every failure-after-200 the kit's streams meet; it cannot force one on a healthy server."""
    seen = 0

    def judge(op: str, body: dict[str, Any], stream: Stream) -> bool:
        nonlocal seen
        events = stream.exchange.events
        for i, event in enumerate(events):
            if not isinstance(event, DataEvent):
                continue
            payload = json.loads(event.data)
            if not (isinstance(payload, dict) and "error" in payload):
                continue
            seen += 1
            validate("ErrorEnvelope", payload, stream.exchange)
            rest = events[i + 1 :]
            if len(rest) != 1 or not isinstance(rest[0], DoneEvent) or stream.exchange.stream_error is not None:
                raise CheckFailed("the error event followed by data: [DONE] and nothing else", f"{len(rest)} events after it; stream ended with {stream.exchange.body[-80:]!r}", exchange=stream.exchange)
            return True
        return False

    try:
        outcome = _stream_property(ctx, judge, "a failure after the 200 status")
    except Skip:
        raise Skip("no stream failed after its 200 status, so the error-event framing could not be observed") from None
    return outcome
