"""Regenerates ``conformance/COMPAT.md``: the kit on our reference server and on `transformers serve`.

Run: ``.venv/bin/python bench/compat_matrix.py`` (about a minute on 2 cores). Both servers run on the
same tiny random Llama the tests build; the reference server also serves a tiny BERT for embeddings.
The targets go to ``llmos-conformance matrix`` through a TOML file, exactly as a vendor would write one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.cli import main as kit  # noqa: E402
from reference_impl.settings import Settings  # noqa: E402
from tests.support.server import free_port, running_server  # noqa: E402
from tests.support.tiny_models import cached_build  # noqa: E402
from tests.support.transformers_serve import transformers_serve  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="llmos-compat-") as tmp:
        root = Path(tmp)
        llama, bert = cached_build("llama", root / "models"), cached_build("bert", root / "models")
        key = "llmos-compat-key-0123456789abcdef"
        with running_server(Settings(data_dir=root / "data", models=[llama, bert], api_keys=[key])) as ref, transformers_serve(llama) as hf:
            targets = root / "targets.toml"
            targets.write_text(
                "[[target]]\nname = \"llmos-reference (tiny Llama + BERT)\"\n"
                f"base_url = \"{ref.base_url}\"\napi_key = \"{key}\"\ncallback_url = \"http://127.0.0.1:{free_port()}\"\n\n"
                "[[target]]\nname = \"transformers serve (tiny Llama)\"\n"
                # Tiny models answer in milliseconds: a request still unanswered after 30 s is a hang, judged as such.
                # At the default 10 examples the fuzzer sends transformers serve a request it keeps generating for
                # minutes (it serves one request at a time, so every later request times out too): 3 examples, as
                # in tests/conformance/test_transformers_serve.py, keep the table about everything else.
                f"openai_base_url = \"{hf}/v1\"\nprofiles = [\"inference\"]\ntimeout = 30\nmax_examples = 3\ngeneration_examples = 2\n",
                encoding="utf-8",
            )
            started = time.monotonic()
            code = kit(["matrix", "--targets", str(targets), "--markdown", str(ROOT / "conformance" / "COMPAT.md"),
                        "--title", "Compatibility: what the kit finds on real servers"])
            print(f"matrix of 2 targets in {time.monotonic() - started:.1f} s; exit {code}; wrote conformance/COMPAT.md")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
