"""Which package architectures this server can run, judged at install so that a version that could
never load is refused (LLMOS-PKG-012) instead of installed and failed at its first load.

The lists of what transformers knows come from the engine (reference_impl.engine.runnable_architecture),
the only module that imports it."""

from __future__ import annotations

from collections.abc import Callable

TESTED_ARCHITECTURES = (
    "BertModel", "GPT2LMHeadModel", "LlamaForCausalLM", "T5ForConditionalGeneration", "llama",
)
"""Architectures the reference server is tested on; transformers can run many more."""

ArchitectureCheck = Callable[[str, str], bool]
"""(architecture, package format) -> whether the engine can run it."""


def runnable(architecture: str, package_format: str, model_classes: frozenset[str], gguf_architectures: frozenset[str]) -> bool:
    """GGUF packages name the file's ``general.architecture``; others a transformers model class."""
    if architecture in TESTED_ARCHITECTURES:
        return True
    return architecture in (gguf_architectures if package_format == "gguf" else model_classes)
