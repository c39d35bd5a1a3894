"""Bench: the full kit against a freshly started reference server on the tiny models, default example counts.

Run: ``.venv/bin/python bench/conformance_run.py``; prints the kit's wall time (target <= 60 s on 2 cores).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance.config import KitSettings  # noqa: E402
from conformance.runner import run  # noqa: E402
from reference_impl.settings import Settings  # noqa: E402
from tests.support.server import free_port, running_server  # noqa: E402
from tests.support.tiny_models import cached_build  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp:
        root = Path(tmp)
        models = [cached_build("llama", root / "models"), cached_build("bert", root / "models")]
        key = "llmos-bench-key-0123456789abcdef"
        with running_server(Settings(data_dir=root / "data", models=models, api_keys=[key])) as srv:
            started = time.monotonic()
            report = run(KitSettings(base_url=srv.base_url, api_key=key, callback_url=f"http://127.0.0.1:{free_port()}", quiet=True))
            elapsed = time.monotonic() - started
    checks = sum(len(r.checks) for r in report.requirements if r.verdict != "unsupported")
    print(f"full kit run: {elapsed:.1f} s wall; {checks} checks on {len(report.target.claimed_profiles)} claimed profiles; "
          f"verdicts {dict((k, v) for k, v in report.counts.items() if v)}; exit code {report.exit_code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
