"""inference: completions and chat, unstreamed; properties that derive their triggers from earlier answers."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import strategies as st

from conformance.context import Context
from conformance.judging import error_code, expect_error, ok_json
from conformance.properties import run_property
from conformance.registry import check
from conformance.bodies import CAPABILITY_OF, minimal_body, PROFILE_OF, RESPONSE_OF
from conformance.traffic import available_ops, deterministic, gen_ops, generate, post, prompts, texts_of
from conformance.streams import open_stream
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip

DAY = 86_400
_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {"temperature": st.sampled_from([0, 0.7, 1.0]), "seed": st.integers(0, 2**31 - 1), "top_p": st.sampled_from([0.5, 1.0])}


def _valid_requests(ctx: Context, op: str) -> st.SearchStrategy[dict[str, Any]]:
    model = ctx.model(CAPABILITY_OF[op])["id"]
    max_n = min(ctx.limit("max_n") or 2, 2)
    fields: dict[str, st.SearchStrategy[Any]] = {"p": prompts, "max_tokens": st.integers(1, ctx.settings.max_tokens), "n": st.integers(1, max_n)}
    return st.fixed_dictionaries(
        fields,
        optional=_OPTIONAL,
    ).map(lambda d: {**minimal_body(op, model, str(d.pop("p")), d.pop("max_tokens")), **d})


def _response_valid(ctx: Context, op: str) -> CheckOutcome:
    def prop(body: dict[str, Any]) -> bool:
        exchange = post(ctx, op, body)
        answer = ok_json(exchange, RESPONSE_OF[op])
        created = answer["created"]
        if not isinstance(created, int) or isinstance(created, bool) or abs(created - time.time()) > DAY:
            raise CheckFailed("created: an integer of Unix seconds near now", repr(created), exchange=exchange)
        return True

    return run_property(ctx, _valid_requests(ctx, op), prop, examples=ctx.settings.generation_examples, what="valid requests")


@check("completion_response_valid")
def completion_response_valid(ctx: Context) -> CheckOutcome:
    if "create_completion" not in available_ops(ctx):
        raise Skip(ctx.plan.skipped_capabilities.get("text-generation", "no text-generation model"))
    return _response_valid(ctx, "create_completion")


@check("chat_response_valid")
def chat_response_valid(ctx: Context) -> CheckOutcome:
    if "create_chat_completion" not in available_ops(ctx):
        raise Skip(ctx.plan.skipped_capabilities.get("chat", "no chat model"))
    return _response_valid(ctx, "create_chat_completion")


@check("usage_adds_up")
def usage_adds_up(ctx: Context) -> CheckOutcome:
    ops = gen_ops(ctx)
    cases = st.sampled_from(ops).flatmap(lambda op: st.tuples(st.just(op), _valid_requests(ctx, op), st.integers(1, 2)))

    def prop(case: tuple[str, dict[str, Any], int]) -> bool:
        op, body, batch = case
        if op == "create_completion" and batch > 1:
            body = {**body, "prompt": [body["prompt"], "and then"]}
        exchange = post(ctx, op, body)
        answer = ok_json(exchange, RESPONSE_OF[op])
        usage = answer["usage"]
        if usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
            raise CheckFailed("total_tokens = prompt_tokens + completion_tokens", repr(usage), exchange=exchange)
        bound = body["max_tokens"] * len(answer["choices"])
        if usage["completion_tokens"] > bound:
            raise CheckFailed(f"completion_tokens <= {bound} (max_tokens x choices)", repr(usage), exchange=exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="usage")


@check("max_tokens_length")
def max_tokens_length(ctx: Context) -> CheckOutcome:
    ops = gen_ops(ctx)
    cases = st.tuples(st.sampled_from(ops), prompts, st.floats(0, 1, exclude_max=True), st.booleans())

    def prop(case: tuple[str, str, float, bool]) -> bool:
        op, prompt, fraction, synonym = case
        _, free = generate(ctx, op, prompt)
        observed = free["usage"]["completion_tokens"]
        if observed < 2:
            return False
        cut = 1 + int(fraction * (observed - 1))
        field = "max_completion_tokens" if synonym and op == "create_chat_completion" else "max_tokens"
        body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt), "temperature": 0, "seed": ctx.settings.seed}
        body.pop("max_tokens")
        body[field] = cut
        exchange = post(ctx, op, body)
        answer = ok_json(exchange, RESPONSE_OF[op])
        choice = answer["choices"][0]
        if answer["usage"]["completion_tokens"] > cut:
            raise CheckFailed(f"completion_tokens <= {field} {cut}", repr(answer["usage"]), exchange=exchange)
        if choice["finish_reason"] != "length":
            raise CheckFailed(f"finish_reason 'length' when cut at {field}={cut} below the observed {observed} tokens", repr(choice["finish_reason"]), exchange=exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, min_triggered=2, what="a max_tokens below the observed length")


def _stop_candidate(text: str, start: float, length: int) -> str | None:
    if len(text) < 2:
        return None
    i = int(start * (len(text) - 1))
    stop = text[i : i + length]
    if not stop.strip() or "\ufffd" in stop:
        return None
    return stop


def _judge_stop(exchange: Any, output: str, finish: str | None, stop: str, reference: str, exact: bool) -> None:
    if stop in output:
        raise CheckFailed(f"output without the stop string {stop!r}", repr(output), exchange=exchange)
    if finish != "stop":
        raise CheckFailed(f"finish_reason 'stop' (the stop string {stop!r} occurs in the unconstrained answer)", repr(finish), exchange=exchange)
    expected = reference[: reference.find(stop)]
    if exact and output != expected:
        raise CheckFailed(f"output ending where {stop!r} first began: {expected!r}", repr(output), exchange=exchange)


@check("stop_sequence_absent")
def stop_sequence_absent(ctx: Context) -> CheckOutcome:
    ops = gen_ops(ctx)
    cases = st.tuples(st.sampled_from(ops), prompts, st.floats(0, 1), st.integers(1, 4))

    def prop(case: tuple[str, str, float, int]) -> bool:
        op, prompt, start, length = case
        _, free = generate(ctx, op, prompt)
        reference = texts_of(op, free).get(0, "")
        stop = _stop_candidate(reference, start, length)
        if stop is None:
            return False
        body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt, ctx.settings.max_tokens), "temperature": 0, "seed": ctx.settings.seed, "stop": [stop]}
        exchange = post(ctx, op, body)
        answer = ok_json(exchange, RESPONSE_OF[op])
        _judge_stop(exchange, texts_of(op, answer).get(0, ""), answer["choices"][0]["finish_reason"], stop, reference, deterministic(ctx, op))
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, min_triggered=2, what="a stop string from the unconstrained answer")


@check("stop_sequence_absent_streamed")
def stop_sequence_absent_streamed(ctx: Context) -> CheckOutcome:
    ops = gen_ops(ctx)
    cases = st.tuples(st.sampled_from(ops), prompts, st.floats(0, 1), st.integers(1, 2), st.integers(1, 2))

    def prop(case: tuple[str, str, float, int, int]) -> bool:
        op, prompt, where, left, right = case
        body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt, ctx.settings.max_tokens), "temperature": 0, "seed": ctx.settings.seed}
        key = ("stream", op, prompt)
        if key not in ctx.cache:
            ctx.cache[key] = open_stream(ctx, op, body)
        free = ctx.cache[key]
        pieces = free.pieces.get(0, [])
        if len(pieces) < 2:
            return False
        # A stop string spanning the boundary between two chunks.
        i = int(where * (len(pieces) - 2))
        stop = pieces[i][-left:] + pieces[i + 1][:right]
        if not stop.strip() or "\ufffd" in stop:
            return False
        reference = free.texts.get(0, "")
        cut = open_stream(ctx, op, {**body, "stop": [stop]})
        reasons = cut.finish.get(0) or []
        finish = reasons[-1] if reasons else None
        _judge_stop(cut.exchange, cut.texts.get(0, ""), finish, stop, reference, deterministic(ctx, op))
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, min_triggered=2, what="a stop string spanning two chunks")


@check("n_choices_indexed")
def n_choices_indexed(ctx: Context) -> CheckOutcome:
    ops = gen_ops(ctx)
    top = max(2, min(ctx.limit("max_n") or 3, 3))
    cases = st.tuples(st.sampled_from(ops), prompts, st.integers(2, top), st.integers(1, 2))

    def prop(case: tuple[str, str, int, int]) -> bool:
        op, prompt, n, batch = case
        body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt, 3), "n": n, "temperature": 1.0, "seed": ctx.settings.seed}
        if op == "create_completion" and batch > 1:
            body["prompt"] = [prompt, "and then"]
        else:
            batch = 1
        exchange = post(ctx, op, body)
        answer = ok_json(exchange, RESPONSE_OF[op])
        indices = [c["index"] for c in answer["choices"]]
        if sorted(indices) != list(range(n * batch)):
            raise CheckFailed(f"{n * batch} choices indexed 0..{n * batch - 1}", f"indices {indices}", exchange=exchange)
        if any(c.get("finish_reason") is None for c in answer["choices"]):
            raise CheckFailed("a finish_reason on every choice", repr(answer["choices"]), exchange=exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="n > 1")


@check("seeded_sequential_identical")
def seeded_sequential_identical(ctx: Context) -> CheckOutcome:
    ops = [op for op in gen_ops(ctx) if deterministic(ctx, op)]
    if not ops:
        raise Skip("no picked generation model claims sequential or batch_invariant determinism")
    cases = st.tuples(st.sampled_from(ops), prompts, st.integers(0, 2**31 - 1), st.integers(1, 2))

    def prop(case: tuple[str, str, int, int]) -> bool:
        op, prompt, seed, n = case
        body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt, ctx.settings.max_tokens), "temperature": 1.0, "seed": seed, "n": n}
        first = ok_json(post(ctx, op, body), RESPONSE_OF[op])
        exchange = post(ctx, op, body)
        second = ok_json(exchange, RESPONSE_OF[op])
        if texts_of(op, first) != texts_of(op, second):
            raise CheckFailed("identical output for identical seeded requests", f"{texts_of(op, first)!r} then {texts_of(op, second)!r}", exchange=exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="seeded requests")


@check("digest_header_matches")
def digest_header_matches(ctx: Context) -> CheckOutcome:
    count = 0
    for op in gen_ops(ctx):
        model = ctx.model(CAPABILITY_OF[op])
        body = minimal_body(op, model["id"])
        exchange = post(ctx, op, body)
        answer = ok_json(exchange, RESPONSE_OF[op])
        header = exchange.served_digest
        if header is None or header != answer.get("system_fingerprint") or header != model.get("digest"):
            raise CheckFailed(f"LLMOS-Model-Digest = system_fingerprint = {model.get('digest')}", f"header {header!r}, system_fingerprint {answer.get('system_fingerprint')!r}", exchange=exchange)
        stream = open_stream(ctx, op, body)
        header = stream.exchange.served_digest
        if header != model.get("digest"):
            raise CheckFailed(f"LLMOS-Model-Digest {model.get('digest')} on the stream", repr(header), exchange=stream.exchange)
        for payload in stream.payloads:
            if isinstance(payload, dict) and "error" not in payload and payload.get("system_fingerprint") != header:
                raise CheckFailed(f"system_fingerprint {header} on every chunk", repr(payload.get("system_fingerprint")), exchange=stream.exchange)
        count += 2
    return CheckOutcome(examples=count, triggered=count)


@check("ids_unique")
def ids_unique(ctx: Context) -> CheckOutcome:
    seen: dict[str, int] = {}
    ops = gen_ops(ctx)
    total = max(4, ctx.settings.generation_examples)
    for i in range(total):
        op = ops[i % len(ops)]
        exchange = post(ctx, op, minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], max_tokens=1))
        answer = ok_json(exchange, RESPONSE_OF[op])
        if answer["id"] in seen:
            raise CheckFailed("a new id for every response", f"id {answer['id']!r} repeated (responses {seen[answer['id']]} and {i})", exchange=exchange)
        seen[answer["id"]] = i
    return CheckOutcome(examples=total, triggered=total)


@check("chat_input_forms")
def chat_input_forms(ctx: Context) -> CheckOutcome:
    if "create_chat_completion" not in available_ops(ctx):
        raise Skip(ctx.plan.skipped_capabilities.get("chat", "no chat model"))
    op = "create_chat_completion"
    model = ctx.model("chat")["id"]
    exact = deterministic(ctx, op)
    count = 0
    for prompt in ("The capital of France is", "hello world"):
        base = {"model": model, "temperature": 0, "seed": ctx.settings.seed, "max_tokens": ctx.settings.max_tokens}
        plain = {**base, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]}
        variants = {
            "the developer role": {**base, "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": prompt}]},
            "text content parts": {**base, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": prompt[:5]}, {"type": "text", "text": prompt[5:]}]}]},
            "max_completion_tokens": {**{k: v for k, v in plain.items() if k != "max_tokens"}, "max_completion_tokens": ctx.settings.max_tokens},
        }
        reference = texts_of(op, ok_json(post(ctx, op, plain), RESPONSE_OF[op]))
        for what, body in variants.items():
            exchange = post(ctx, op, body)
            answer = ok_json(exchange, RESPONSE_OF[op])
            count += 1
            if exact and texts_of(op, answer) != reference:
                raise CheckFailed(f"{what} honoured: the same output as the plain form {reference!r}", repr(texts_of(op, answer)), exchange=exchange)
    return CheckOutcome(examples=count, triggered=count)


@check("context_length_exceeded")
def context_length_exceeded(ctx: Context) -> CheckOutcome:
    """Overflow the context by the cheapest route the declared limits leave open.

    Either ``max_tokens`` alone reaches the context, or a long prompt does, or (when the limits allow
    neither) a prompt within ``max_prompt_tokens`` plus the largest allowed ``max_tokens``. A prompt of
    N words has at least N tokens; when the tokenizer splits words and the prompt trips
    ``max_prompt_tokens`` instead, the example is not counted as triggered.
    """
    count = 0
    unsized: list[str] = []
    body_limit = ctx.limit("max_body_bytes") or 2**31
    for op in gen_ops(ctx):
        model = ctx.model(CAPABILITY_OF[op])
        context = int(model.get("context_length") or 0)
        if not context:
            unsized.append(str(model["id"]))
        max_tokens = ctx.limit("max_tokens")
        max_prompt = ctx.limit("max_prompt_tokens")
        body = minimal_body(op, model["id"])
        long_prompt_with_budget = False
        if not context:
            continue
        if max_tokens is None or context <= max_tokens:
            body["max_tokens"] = context
        elif (max_prompt is None or context + 8 < max_prompt) and context * 8 < body_limit:
            body = minimal_body(op, model["id"], "hello " * (context + 8), 1)
        elif max_prompt is None or context - max_tokens + 16 <= max_prompt:
            words = context - max_tokens + 16
            if words * 8 >= body_limit:
                continue
            body = minimal_body(op, model["id"], "hello " * words, max_tokens)
            long_prompt_with_budget = True
        else:
            continue
        exchange = post(ctx, op, body)
        if long_prompt_with_budget and exchange.status == 400 and error_code(exchange) == "limit_exceeded":
            continue  # the words tokenized into more than max_prompt_tokens: a limit the server may apply first
        expect_error(exchange, ("context_length_exceeded",))
        count += 1
    if not count and unsized:
        raise Skip(f"the model list states no context_length for {', '.join(map(repr, dict.fromkeys(unsized)))} (LLMOS-MOD-001), so no request can be sized to exceed it")
    if not count:
        raise Skip("the declared limits refuse every request that would exceed the context length first")
    return CheckOutcome(examples=count, triggered=count)


@check("temperature_zero_greedy")
def temperature_zero_greedy(ctx: Context) -> CheckOutcome:
    count = 0
    for op in gen_ops(ctx):
        for prompt in ("Once upon a time", "1, 2, 3, 4,"):
            body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"], prompt, ctx.settings.max_tokens), "temperature": 0}
            first = ok_json(post(ctx, op, body), RESPONSE_OF[op])
            exchange = post(ctx, op, body)
            second = ok_json(exchange, RESPONSE_OF[op])
            if texts_of(op, first) != texts_of(op, second):
                raise CheckFailed("identical output at temperature 0", f"{texts_of(op, first)!r} then {texts_of(op, second)!r}", exchange=exchange)
            count += 1
    return CheckOutcome(examples=count, triggered=count)


@check("capability_checked")
def capability_checked(ctx: Context) -> CheckOutcome:
    pairs: list[tuple[str, str]] = []
    for op, cap in CAPABILITY_OF.items():
        if PROFILE_OF[op] not in ctx.plan.claimed:
            continue
        # Only a model that states its capabilities can be held to lacking one.
        lacking = next((m for m in ctx.plan.model_list if (caps := ctx.plan.declared_capabilities(m)) is not None and cap not in caps), None)
        if lacking is not None:
            pairs.append((op, str(lacking["id"])))
    if not pairs:
        raise Skip("no listed model declares that it lacks a capability a claimed operation needs")
    with Failures() as failures:
        for op, model in pairs:
            with failures.each():
                expect_error(post(ctx, op, minimal_body(op, model)), ("capability_not_supported",))
    return CheckOutcome(examples=len(pairs), triggered=len(pairs))
