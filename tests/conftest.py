"""Session-wide test setup: offline Hugging Face libraries, the `slow` marker, tiny real models built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach the network; set before transformers is first imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: needs real model weights; runs only when LLMOS_SLOW=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("LLMOS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test; set LLMOS_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


def _build(kind: str, root: Path) -> Path:
    from tests.support.tiny_models import cached_build

    return cached_build(kind, root)


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_models_root: Path) -> Path:
    return _build("llama", tiny_models_root)


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tiny_models_root: Path) -> Path:
    return _build("gpt2", tiny_models_root)


@pytest.fixture(scope="session")
def tiny_t5_dir(tiny_models_root: Path) -> Path:
    return _build("t5", tiny_models_root)


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_models_root: Path) -> Path:
    return _build("bert", tiny_models_root)
