"""Discovery's max_concurrent is enforced: a request past the limit waits for a running one to finish."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from reference_impl.settings import Settings
from tests.support.server import running_server


def test_a_request_past_max_concurrent_waits_for_the_running_stream(tmp_path: Path, tiny_llama_dir: Path) -> None:
    settings = Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])
    settings.limits.max_concurrent = 1
    with running_server(settings) as srv, httpx.Client(base_url=srv.base_url, timeout=60) as http:
        assert http.get("/.well-known/llmos").json()["limits"]["max_concurrent"] == 1
        finished: dict[str, float] = {}
        long = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 200, "stream": True}
        short = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}

        def second() -> None:
            with httpx.Client(base_url=srv.base_url, timeout=60) as other:
                assert other.post("/v1/chat/completions", json=short).status_code == 200
            finished["short"] = time.monotonic()

        with http.stream("POST", "/v1/chat/completions", json=long) as response:
            chunks = response.iter_raw()
            next(chunks)  # the long stream holds the only slot from here on
            waiting = threading.Thread(target=second)
            waiting.start()
            body = b"".join(chunks)
            finished["long"] = time.monotonic()
        waiting.join(60)
        assert body.endswith(b"data: [DONE]\n\n")
        # One token alone takes milliseconds; it can only finish after the 200-token stream released the slot.
        assert finished["long"] <= finished["short"]
        # Paths that serve no model are not gated.
        assert http.get("/llmos/v1/health/ready").status_code == 200
