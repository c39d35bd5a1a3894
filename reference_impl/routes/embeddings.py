"""embeddings: OpenAI-compatible vectors, as float arrays or base64 little-endian float32."""

from __future__ import annotations

import asyncio
import base64
import struct

from starlette.responses import Response

from llmos_std.errors import LLMOSError
from llmos_std.inference import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, prompt_batch
from llmos_std.operations import MODEL_DIGEST_HEADER
from llmos_std.parameters import EMBEDDING, gated_fields_in_use

from reference_impl.engine import EmbedInput, EmbeddingModel, EngineError
from reference_impl.generation import check_token_ids, engine_failure
from reference_impl.http import Context, Handler, wire_json


def encode_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


async def create_embedding(ctx: Context) -> Response:
    body = ctx.body
    if not isinstance(body, EmbeddingRequest):
        raise LLMOSError("invalid_request", "unexpected body")
    lease = ctx.state.runtime.acquire(body.model)
    try:
        model = lease.model
        manifest = lease.version.manifest
        if not isinstance(model, EmbeddingModel) or "embeddings" not in manifest.capabilities:
            raise LLMOSError("capability_not_supported", f"{body.model} does not produce embeddings", param="model")
        # `dimensions` equal to the model's own size asks for nothing: accepted without the capability.
        refused = [r for r in gated_fields_in_use(EMBEDDING, body, frozenset(manifest.capabilities))
                   if not (r.field == "dimensions" and body.dimensions == model.dimensions)]
        if refused:
            raise LLMOSError("unsupported_parameter", f"{refused[0].field} needs the model capability {refused[0].capability!r}", param=refused[0].field)
        items = prompt_batch(body.input)
        limits = ctx.state.settings.limits
        if len(items) > limits.max_batch:
            raise LLMOSError("limit_exceeded", f"at most {limits.max_batch} inputs", param="input")
        check_token_ids(items, model.vocab_size, "input")
        texts: list[EmbedInput] = [item if isinstance(item, str) else tuple(item) for item in items]
        single = isinstance(body.input, str) or isinstance(body.input[0], int)
        for i, text in enumerate(texts):
            param = "input" if single else f"input.{i}"
            if not text:
                raise LLMOSError("invalid_value", "inputs must not be empty", param=param)
            if model.count_tokens(text) > model.context_length:
                raise LLMOSError("context_length_exceeded", f"input {i} exceeds the model's {model.context_length} tokens", param=param)
        try:
            vectors, tokens = await asyncio.to_thread(model.embed, texts)
        except EngineError as exc:  # a replica that died while embedding: 503 + Retry-After
            raise engine_failure(exc) from None
    finally:
        lease.release()
    as_base64 = body.encoding_format == "base64"
    data = [Embedding(index=i, embedding=encode_base64(v) if as_base64 else v) for i, v in enumerate(vectors)]
    response = EmbeddingResponse(data=data, model=body.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))
    return wire_json(response, headers={MODEL_DIGEST_HEADER: lease.version.digest})


HANDLERS: dict[str, Handler] = {"create_embedding": create_embedding}
