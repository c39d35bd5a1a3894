"""The kit's hand-written test package: deterministic bytes that transformers loads (or, on purpose, cannot)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

from conformance.package import ARCHITECTURES, CONTEXT, EOS, build, choose
from llmos_std.manifest import PackageManifest


def _write(files: dict[str, bytes], out: Path) -> Path:
    out.mkdir()
    for path, data in files.items():
        (out / path).write_bytes(data)
    return out


def test_same_seed_same_bytes_other_seed_other_weights() -> None:
    one = build("m", "1.0.0", architecture="LlamaForCausalLM", seed=1)
    again = build("m", "1.0.0", architecture="LlamaForCausalLM", seed=1)
    other = build("m", "2.0.0", architecture="LlamaForCausalLM", seed=2)
    assert one.files == again.files and one.digest == again.digest
    assert one.files["model.safetensors"] != other.files["model.safetensors"]
    assert one.renamed("n").files == one.files and one.renamed("n").digest != one.digest
    PackageManifest.model_validate(one.manifest)


def test_tokenizer_round_trips_any_text() -> None:
    tokenizer = Tokenizer.from_str(build("m", "1.0.0", architecture="GPT2LMHeadModel", seed=1).files["tokenizer.json"].decode())
    text = "héllo wörld\n<|im_start|>user"
    encoding = tokenizer.encode(text)
    assert tokenizer.decode(encoding.ids, skip_special_tokens=False) == text


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))  # every architecture the kit can build
def test_transformers_loads_it_and_it_runs_to_max_tokens(tmp_path: Path, architecture: str) -> None:
    pkg = build("m", "1.0.0", architecture=architecture, seed=3)
    directory = _write(pkg.files, tmp_path / "good")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=40, do_sample=False)[0][ids["input_ids"].shape[1]:]
    assert len(out) == 40 and EOS not in out.tolist()
    assert tokenizer.decode(out).isprintable()
    context = model.config.max_position_embeddings if architecture.startswith("Llama") else model.config.n_positions
    assert context == CONTEXT


def test_the_unloadable_version_fails_to_load(tmp_path: Path) -> None:
    pkg = build("m", "0.0.1-unloadable", architecture="LlamaForCausalLM", seed=3, loadable=False)
    with pytest.raises(RuntimeError):
        AutoModelForCausalLM.from_pretrained(_write(pkg.files, tmp_path / "bad"), dtype=torch.float32)


def test_choose_follows_discovery() -> None:
    assert choose({"accepted_formats": ["safetensors"], "architectures": ["GPT2LMHeadModel"]}) == ("GPT2LMHeadModel", "safetensors")
    with pytest.raises(ValueError, match="accepts"):
        choose({"accepted_formats": ["gguf"], "architectures": ["LlamaForCausalLM"]})
    with pytest.raises(ValueError, match="declares"):
        choose({"accepted_formats": ["safetensors"], "architectures": ["BertModel"]})
