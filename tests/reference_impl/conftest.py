"""A shared reference server on the tiny models, for the read-only end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reference_impl.settings import Settings
from tests.support.server import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_bert_dir: Path) -> Iterator[RunningServer]:
    settings = Settings(insecure_local=True, data_dir=tmp_path_factory.mktemp("server-data"), models=[tiny_llama_dir, tiny_bert_dir])
    with running_server(settings) as srv:
        yield srv


@pytest.fixture()
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def model_ids(server: RunningServer) -> dict[str, str]:
    """The model id serving each capability (chat, embeddings)."""
    data = httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]
    ids: dict[str, str] = {}
    for entry in data:
        for capability in entry["capabilities"]:
            ids.setdefault(capability, entry["id"])
    return ids
