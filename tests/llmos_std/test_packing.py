"""pack on real tiny models and real GGUF files: manifests inferred, hostile sources refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from llmos_std.manifest import GenerationDefaults, PackageManifest
from llmos_std.packing import default_package_dir, pack
from llmos_std.verification import MANIFEST_NAME, PackageError, hash_file, validate, verify
from tests.llmos_std.conftest import MINILM_DIR, SMOLLM2_GGUF, write_tiny_gguf


def _pack(source: Path, out: Path, **kwargs: Any) -> PackageManifest:
    kwargs.setdefault("license", "MIT")
    return pack(source, name="tiny", version="1.0.0", out=out, **kwargs)


# ---------------------------------------------------------------- pack: Hugging Face directories


def test_pack_tiny_llama_then_verify_passes(tiny_llama_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    manifest = _pack(tiny_llama_dir, out)
    assert manifest.kind == "causal-lm"
    assert manifest.architecture == "LlamaForCausalLM"
    assert manifest.format == "safetensors"
    assert manifest.capabilities == ["text-generation", "chat", "tasks"]
    assert sorted(manifest.task_templates) == ["answer", "summarize", "translate"]  # the standard's templates
    assert (manifest.context_length.value, manifest.context_length.source) == (512, "config")
    roles = {entry.path: entry.role for entry in manifest.files}
    assert roles["model.safetensors"] == "weights"
    assert roles["config.json"] == "config"
    assert roles["tokenizer.json"] == "tokenizer"
    assert roles["generation_config.json"] == "generation-config"
    assert [entry.path for entry in manifest.files] == sorted(roles)
    for entry in manifest.files:
        assert (out / entry.path).read_bytes() == (tiny_llama_dir / entry.path).read_bytes()
    assert validate(out) == manifest
    result = verify(out)
    assert result.ok
    assert result.problems == ()
    assert result.digest == manifest.digest()


def test_manifest_is_indented_sorted_json(tiny_llama_dir: Path, tmp_path: Path) -> None:
    _pack(tiny_llama_dir, tmp_path / "pkg")
    text = (tmp_path / "pkg" / MANIFEST_NAME).read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir() if p.name.startswith(".")) == []


def test_pack_is_deterministic(tiny_llama_dir: Path, tmp_path: Path) -> None:
    first = _pack(tiny_llama_dir, tmp_path / "one")
    second = _pack(tiny_llama_dir, tmp_path / "two")
    assert (tmp_path / "one" / MANIFEST_NAME).read_bytes() == (tmp_path / "two" / MANIFEST_NAME).read_bytes()
    assert first.digest() == second.digest()


def test_pack_into_existing_empty_directory(tiny_llama_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    _pack(tiny_llama_dir, tmp_path / "pkg")
    assert verify(tmp_path / "pkg").ok


def test_pack_refuses_a_non_empty_output(tiny_llama_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        _pack(tiny_llama_dir, tmp_path / "pkg")
    assert (tmp_path / "pkg" / "keep.txt").read_text() == "mine"


def test_pack_refuses_an_output_inside_the_source(llama_copy: Path) -> None:
    with pytest.raises(ValueError, match="outside the source"):
        _pack(llama_copy, llama_copy / "pkg")


def test_default_package_dir_is_next_to_the_source(tmp_path: Path) -> None:
    assert default_package_dir(tmp_path / "model", "tiny", "1.2.3") == tmp_path / "tiny-1.2.3"


def test_pack_t5_declares_512_positions(tiny_t5_dir: Path, tmp_path: Path) -> None:
    manifest = _pack(tiny_t5_dir, tmp_path / "pkg")
    assert manifest.kind == "seq2seq-lm"
    assert manifest.architecture == "T5ForConditionalGeneration"
    assert manifest.capabilities == ["text-generation", "tasks"]
    assert (manifest.context_length.value, manifest.context_length.source) == (512, "declared")


def test_pack_sentence_transformers_embedder(tiny_bert_dir: Path, tmp_path: Path) -> None:
    manifest = _pack(tiny_bert_dir, tmp_path / "pkg")
    assert manifest.kind == "embedding"
    assert manifest.capabilities == ["embeddings"]
    assert {e.path: e.role for e in manifest.files}["1_Pooling/config.json"] == "config"
    assert manifest.context_length.value == 128
    assert verify(tmp_path / "pkg").ok


def test_pack_real_minilm_embedder(tmp_path: Path) -> None:
    # The installed all-MiniLM-L6-v2: a real sentence-transformers layout with a README license.
    manifest = pack(MINILM_DIR, name="all-minilm-l6-v2", version="1.0.0", out=tmp_path / "pkg")
    assert manifest.kind == "embedding"
    assert manifest.architecture == "BertModel"
    assert manifest.license == "Apache-2.0"
    assert (manifest.context_length.value, manifest.context_length.source) == (256, "config")
    roles = {e.path: e.role for e in manifest.files}
    assert roles["vocab.txt"] == "tokenizer"
    assert roles["README.md"] == "doc"
    assert roles["model.safetensors"] == "weights"
    assert verify(tmp_path / "pkg").ok


def test_license_from_readme_front_matter(llama_copy: Path, tmp_path: Path) -> None:
    (llama_copy / "README.md").write_text("---\nlanguage: en\nlicense: mit\n---\n# Tiny\n")
    manifest = pack(llama_copy, name="tiny", version="1.0.0", out=tmp_path / "pkg")
    assert manifest.license == "MIT"


def test_missing_license_asks_for_the_flag(tiny_llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="--license") as caught:
        pack(tiny_llama_dir, name="tiny", version="1.0.0", out=tmp_path / "pkg")
    assert caught.value.code == "manifest_invalid"
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"version": "1.0"}, "version:"),  # not SemVer
        ({"name": "Tiny Model"}, "name:"),  # upper case and a space
        ({"license": "MIT OR"}, "license:"),  # dangling operator
    ],
)
def test_pack_checks_arguments_before_copying(
    tiny_llama_dir: Path, tmp_path: Path, kwargs: dict[str, str], field: str
) -> None:
    args = {"name": "tiny", "version": "1.0.0", "license": "MIT", **kwargs}
    with pytest.raises(PackageError) as caught:
        pack(tiny_llama_dir, out=tmp_path / "pkg", name=args["name"], version=args["version"], license=args["license"])
    assert any(problem.startswith(field) for problem in caught.value.problems)
    assert not (tmp_path / "pkg").exists()


def test_hidden_files_and_dirs_are_skipped(llama_copy: Path, tmp_path: Path) -> None:
    (llama_copy / ".git").mkdir()
    (llama_copy / ".git" / "config").write_text("[core]\n")
    (llama_copy / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    manifest = _pack(llama_copy, tmp_path / "pkg")
    assert not any(entry.path.startswith(".") for entry in manifest.files)


def test_symlink_in_source_is_refused_naming_it(llama_copy: Path, tmp_path: Path) -> None:
    (llama_copy / "extra_config.json").symlink_to(llama_copy / "config.json")
    with pytest.raises(PackageError) as caught:
        _pack(llama_copy, tmp_path / "pkg")
    assert caught.value.code == "path_invalid"
    assert "extra_config.json" in caught.value.problems[0]
    assert not (tmp_path / "pkg").exists()


def test_symlinked_directory_in_source_is_refused(llama_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (llama_copy / "1_Pooling").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(PackageError, match="1_Pooling"):
        _pack(llama_copy, tmp_path / "pkg")


def test_source_that_is_a_symlink_is_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tiny_llama_dir, target_is_directory=True)
    with pytest.raises(PackageError, match="symbolic link"):
        _pack(tmp_path / "link", tmp_path / "pkg")


def _make_pickle_source(llama_copy: Path) -> None:
    (llama_copy / "model.safetensors").unlink()
    torch.save({"weight": torch.zeros(2, 2)}, llama_copy / "pytorch_model.bin")


def test_pickle_weights_refused_unless_allowed(llama_copy: Path, tmp_path: Path) -> None:
    _make_pickle_source(llama_copy)
    with pytest.raises(PackageError) as caught:
        _pack(llama_copy, tmp_path / "refused")
    assert caught.value.code == "format_forbidden"
    assert caught.value.problems[0].startswith("pytorch_model.bin:")
    assert not (tmp_path / "refused").exists()
    manifest = _pack(llama_copy, tmp_path / "pkg", allow_pickle=True)
    assert manifest.format == "pytorch-pickle"
    assert {e.path: e.role for e in manifest.files}["pytorch_model.bin"] == "weights"
    assert verify(tmp_path / "pkg").ok


def test_pickle_next_to_safetensors_is_left_out(llama_copy: Path, tmp_path: Path) -> None:
    # Hub repositories often carry both; the package keeps the safe format only.
    torch.save({"weight": torch.zeros(2)}, llama_copy / "pytorch_model.bin")
    manifest = _pack(llama_copy, tmp_path / "pkg")
    assert manifest.format == "safetensors"
    assert "pytorch_model.bin" not in {entry.path for entry in manifest.files}


def test_directory_without_weights_is_refused(llama_copy: Path, tmp_path: Path) -> None:
    (llama_copy / "model.safetensors").unlink()
    with pytest.raises(PackageError, match="no weights"):
        _pack(llama_copy, tmp_path / "pkg")


def test_code_files_are_refused(llama_copy: Path, tmp_path: Path) -> None:
    (llama_copy / "modeling_tiny.py").write_text("import os\n")
    with pytest.raises(PackageError, match="modeling_tiny.py") as caught:
        _pack(llama_copy, tmp_path / "pkg")
    assert caught.value.code == "format_forbidden"


def test_auto_map_is_refused(llama_copy: Path, tmp_path: Path) -> None:
    config = json.loads((llama_copy / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"}
    (llama_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(PackageError, match="auto_map"):
        _pack(llama_copy, tmp_path / "pkg")


def test_unclassifiable_files_are_named(llama_copy: Path, tmp_path: Path) -> None:
    (llama_copy / "mystery.dat").write_bytes(b"\x00")
    with pytest.raises(PackageError, match="mystery.dat"):
        _pack(llama_copy, tmp_path / "pkg")


# ---------------------------------------------------------------- pack: GGUF


def test_pack_tiny_gguf(tiny_gguf: Path, tmp_path: Path) -> None:
    manifest = pack(tiny_gguf, name="tiny-gguf", version="0.1.0", out=tmp_path / "pkg")
    assert manifest.kind == "causal-lm"
    assert manifest.format == "gguf"
    assert manifest.architecture == "llama"
    assert (manifest.context_length.value, manifest.context_length.source) == (256, "gguf")
    assert manifest.capabilities == ["text-generation", "chat", "tasks"]
    assert manifest.license == "MIT"
    assert manifest.quantization is not None and manifest.quantization.method == "F16"
    assert [(e.path, e.role) for e in manifest.files] == [("tiny.gguf", "weights")]
    assert verify(tmp_path / "pkg").ok


def test_gguf_without_chat_template_or_license(tmp_path: Path) -> None:
    source = write_tiny_gguf(tmp_path / "plain.gguf", license=None, chat_template=None)
    with pytest.raises(PackageError, match="--license"):
        pack(source, name="plain", version="0.1.0", out=tmp_path / "refused")
    manifest = pack(source, name="plain", version="0.1.0", out=tmp_path / "pkg", license="Apache-2.0")
    assert manifest.capabilities == ["text-generation", "tasks"]


def test_malformed_gguf_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "broken.gguf"
    source.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 20)
    with pytest.raises(PackageError) as caught:
        pack(source, name="broken", version="0.1.0", out=tmp_path / "pkg", license="MIT")
    assert caught.value.code == "weights_malformed"


def test_pack_real_smollm2_gguf(tmp_path: Path) -> None:
    manifest = pack(SMOLLM2_GGUF, name="smollm2-135m", version="1.0.0", out=tmp_path / "pkg", license="Apache-2.0")
    assert manifest.architecture == "llama"
    assert manifest.format == "gguf"
    assert manifest.quantization is not None and manifest.quantization.method == "Q4_1"
    assert (manifest.context_length.value, manifest.context_length.source) == (8192, "gguf")
    assert "chat" in manifest.capabilities
    assert manifest.files[0].digest == hash_file(SMOLLM2_GGUF)[0]
    assert verify(tmp_path / "pkg").ok


def test_stated_generation_defaults_land_in_the_manifest(tmp_path: Path) -> None:
    """A GGUF file carries no sampling advice; the packager states the model card's."""
    assert pack(SMOLLM2_GGUF, name="a", version="1.0.0", out=tmp_path / "a", license="Apache-2.0").generation_defaults is None
    stated = GenerationDefaults(temperature=0.2, top_p=0.9)
    manifest = pack(SMOLLM2_GGUF, name="b", version="1.0.0", out=tmp_path / "b", license="Apache-2.0", generation_defaults=stated)
    assert manifest.generation_defaults == stated
    assert validate(tmp_path / "b").generation_defaults == stated


def test_pack_leaves_no_temporary_directories(tiny_llama_dir: Path, tmp_path: Path) -> None:
    _pack(tiny_llama_dir, tmp_path / "pkg")
    assert sorted(os.listdir(tmp_path)) == ["pkg"]
    shutil.rmtree(tmp_path / "pkg")
