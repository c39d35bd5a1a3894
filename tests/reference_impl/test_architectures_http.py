"""Beyond Llama: a GPT-2 causal LM and a T5 seq2seq model install, serve and stream over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reference_impl.settings import Settings
from tests.support.server import running_server


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_t5_dir"])
def test_completions_serve_and_stream_the_same_text(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    model_dir: Path = request.getfixturevalue(fixture)
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[model_dir])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        listed = http.get("/v1/models").json()["data"]
        assert len(listed) == 1 and "text-generation" in listed[0]["capabilities"]
        body = {"model": listed[0]["id"], "prompt": "the cat", "max_tokens": 6, "temperature": 0}
        plain = http.post("/v1/completions", json=body)
        assert plain.status_code == 200, plain.text
        answer = plain.json()
        assert answer["usage"]["completion_tokens"] <= 6
        streamed = http.post("/v1/completions", json={**body, "stream": True})
        events = [line[len("data: "):] for line in streamed.text.split("\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        text = "".join(choice["text"] for event in events[:-1] for choice in json.loads(event)["choices"])
        assert text == answer["choices"][0]["text"]


# Found by the kit's schema-driven fuzzer (LLMOS-ERR-008): GPT-2's tokenizer adds no special token, so
# an empty prompt became a zero-length tensor and a 500 (a 200 then an error event when streamed).
@pytest.mark.parametrize("prompt", ["", [""]])
def test_an_empty_prompt_is_served_from_the_boundary_token(prompt: object, tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_gpt2_dir])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        model = http.get("/v1/models").json()["data"][0]["id"]
        body = {"model": model, "prompt": prompt, "max_tokens": 4, "temperature": 0}
        plain = http.post("/v1/completions", json=body)
        assert plain.status_code == 200, plain.text
        assert plain.json()["usage"]["prompt_tokens"] == 1
        streamed = http.post("/v1/completions", json={**body, "stream": True})
        events = [line[len("data: "):] for line in streamed.text.split("\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]" and not any("error" in json.loads(e) for e in events[:-1])
