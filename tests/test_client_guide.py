"""docs/client.md stays runnable: every python block runs as a program against the reference server on
tiny models and must exit 0 (issue 11, item 7)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reference_impl.settings import Settings
from tests.support.server import RunningServer, running_server

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "client.md"
KEY = "llmos-guide-key-0123456789abcdef0123"
MIN_BLOCKS = 6
"""Discovery, inference, async, streaming, errors, retries, raw calls, management: fewer means sections lost their example."""
ENV_VARS = ("LLMOS_BASE_URL", "LLMOS_API_KEY", "LLMOS_CHAT_MODEL", "LLMOS_EMBED_MODEL")


@dataclass(frozen=True)
class Block:
    id: str
    line: int
    code: str


def python_blocks(text: str) -> list[Block]:
    """Each ```python block, named after the section it is in."""
    blocks: list[Block] = []
    lines: list[str] = []
    section, start, inside = "top", 0, False
    for number, line in enumerate(text.splitlines(), start=1):
        if inside:
            if line.strip() == "```":
                inside = False
                name = section if all(b.id != section for b in blocks) else f"{section}-{start}"
                blocks.append(Block(name, start, "\n".join(lines) + "\n"))
            else:
                lines.append(line)
        elif line.strip() == "```python":
            inside, start, lines = True, number, []
        elif line.startswith("## "):
            section = re.sub(r"[^a-z0-9]+", "-", line[3:].lower()).strip("-")
    assert not inside, f"docs/client.md line {start}: a python block is never closed"
    return blocks


BLOCKS = python_blocks(GUIDE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_bert_dir: Path) -> Iterator[RunningServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("guide-server"), models=[tiny_llama_dir, tiny_bert_dir], api_keys=[KEY])
    with running_server(settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def example_env(server: RunningServer) -> dict[str, str]:
    # Plain httpx, not the client under test: a broken client must fail the examples, not the setup.
    listed = httpx.get(f"{server.base_url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    listed.raise_for_status()
    models = listed.json()["data"]
    chat = next(m["id"] for m in models if "chat" in m["capabilities"])
    embed = next(m["id"] for m in models if "embeddings" in m["capabilities"])
    return {**os.environ, "LLMOS_BASE_URL": server.base_url, "LLMOS_API_KEY": KEY, "LLMOS_CHAT_MODEL": chat, "LLMOS_EMBED_MODEL": embed}


def test_the_guide_has_its_examples() -> None:
    assert len(BLOCKS) >= MIN_BLOCKS, f"docs/client.md has {len(BLOCKS)} python blocks, expected at least {MIN_BLOCKS}"
    for block in BLOCKS:  # the convention the guide documents: no example hard-codes a server
        assert "LLMOS_BASE_URL" in block.code, f"docs/client.md line {block.line}: the example does not read LLMOS_BASE_URL"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_the_example_runs(block: Block, example_env: dict[str, str]) -> None:
    # The working tree's llmos_std comes first on sys.path: `-c` puts the cwd there.
    result = subprocess.run([sys.executable, "-c", block.code], cwd=ROOT, env=example_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"docs/client.md line {block.line} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


def test_block_extraction() -> None:
    text = "## One\n```python\na = 1\n```\n```sh\nls\n```\n## Two: b!\n```python\nb = 2\n```\n```python\nc = 3\n```\n"
    assert [(b.id, b.line, b.code) for b in python_blocks(text)] == [
        ("one", 2, "a = 1\n"), ("two-b", 9, "b = 2\n"), ("two-b-12", 12, "c = 3\n"),
    ]
