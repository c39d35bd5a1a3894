"""The one thread that runs torch: every forward pass, sampling step and model load of the process.

Why one: torch's CPU ops run on OpenMP, and every OS thread that runs a parallel op gets its own team of
worker threads. Once the process holds more OpenMP workers than cores (a scheduler thread per model, a
loader thread, the event loop's executor threads for embeddings), libgomp "throttles" its workers: they
sleep on a futex after each parallel region instead of spinning, and a decode step of ~300 small
parallel regions pays a wake-up for each. Measured on a 2-core machine with SmolLM2-135M (int4): one
step took 19 ms on a lone team and 46-50 ms once a second team existed (``bench/threads_bench.py``).
So one thread owns intra-op parallelism, every other thread is set to one torch thread, and callers hand
it their work; the hand-off costs microseconds against steps of milliseconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")

_THREADS = int(os.environ.get("LLMOS_TORCH_THREADS", "0")) or torch.get_num_threads()


_worker_thread: threading.Thread | None = None


def _own_the_cores() -> None:
    global _worker_thread
    _worker_thread = threading.current_thread()
    torch.set_num_threads(_THREADS)
    torch.ones(1 << 16).sum()  # a parallel op, so this thread's thread count is fixed now (torch sets it lazily)


_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmos-torch")
_worker.submit(_own_the_cores).result()
torch.set_num_threads(1)  # every thread that has not run torch yet: no OpenMP team of its own


def run(work: Callable[..., T], *args: object) -> T:
    """Runs ``work(*args)`` on the torch thread and returns its result (re-raising its exception)."""
    if threading.current_thread() is _worker_thread:  # already there (a load that builds a model, say)
        return work(*args)
    return _worker.submit(work, *args).result()


def threads() -> int:
    """Intra-op threads of the torch thread."""
    return _THREADS
