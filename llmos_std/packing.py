"""``pack``: a Hugging Face model directory or one GGUF file becomes a package directory with its manifest.

What the manifest says (kind, format, architecture, context length, license, sampling) is read from the
source's own files; the package is assembled beside its destination and renamed into place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Literal, get_args

from pydantic import ValidationError

from llmos_std.manifest import (
    MANIFEST_SCHEMA_VERSION,
    FileRole,
    GenerationDefaults,
    ModelKind,
    PackageManifest,
    WeightsFormat,
    check_spdx_expression,
)
from llmos_std.models import NAME_PATTERN
from llmos_std.parameters import Capability
from llmos_std.semver import is_semver
from llmos_std.tasks import TASK_NAMES
from llmos_std.verification import MANIFEST_NAME, PackageError, copy_hashing, validation_error
from llmos_std.weightfiles import WEIGHT_SUFFIXES, MalformedWeights, read_gguf_metadata

# ---------------------------------------------------------------- pack

_FORMAT_PREFERENCE: tuple[WeightsFormat, ...] = ("safetensors", "gguf", "onnx", "pytorch-pickle")
# Weights for other frameworks that HF repositories ship next to the PyTorch ones: left out of the package.
_OTHER_FRAMEWORK_SUFFIXES = (".h5", ".msgpack", ".ot", ".tflite", ".mlmodel")
_TOKENIZER_NAMES = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "vocab.txt", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "spm.model",
}  # fmt: skip
_DOC_SUFFIXES = (".md", ".txt", ".rst", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".pdf", ".cff", ".html")
_DOC_STEMS = ("readme", "license", "licence", "notice", "copying", "use_policy", "citation")
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
_CONTEXT_KEYS = (
    "max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length", "max_seq_length",
    "seq_length", "n_ctx",
)  # fmt: skip
# Hugging Face's lower-case license ids -> SPDX ids (SPDX matching is case-insensitive; this fixes the case).
_HF_LICENSES = {
    "apache-2.0": "Apache-2.0", "mit": "MIT", "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
    "mpl-2.0": "MPL-2.0", "gpl-2.0": "GPL-2.0-only", "gpl-3.0": "GPL-3.0-only", "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3.0": "LGPL-3.0-only", "agpl-3.0": "AGPL-3.0-only", "cc0-1.0": "CC0-1.0", "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-nc-4.0": "CC-BY-NC-4.0", "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "unlicense": "Unlicense", "bsl-1.0": "BSL-1.0", "artistic-2.0": "Artistic-2.0", "wtfpl": "WTFPL",
}  # fmt: skip
_NO_LICENSE = {"", "other", "unknown", "none", "noassertion"}
# ggml's llama_ftype enum (general.file_type); 5 and 6 were removed upstream.
_GGUF_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "Q4_1_SOME_F16", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip


def default_package_dir(source: Path, name: str, version: str) -> Path:
    """Where ``pack`` writes when no ``out`` is given: ``<name>-<version>`` next to the source."""
    return Path(source).absolute().parent / f"{name}-{version}"


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _collect(source: Path) -> list[tuple[str, Path]]:
    """Every regular, non-hidden file under ``source`` as (relative POSIX path, path); refuses links."""
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(source, followlinks=False):
        base = Path(root)
        for name in list(dirs):
            if _is_hidden(name):
                dirs.remove(name)
            elif (base / name).is_symlink():
                raise PackageError("path_invalid", [f"{base / name}: symbolic links are refused; copy the target in"])
        for name in files:
            path = base / name
            if _is_hidden(name):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise PackageError("path_invalid", [f"{path}: symbolic links are refused; copy the target in"])
            if not stat.S_ISREG(mode):
                raise PackageError("path_invalid", [f"{path}: not a regular file"])
            found.append((path.relative_to(source).as_posix(), path))
    return sorted(found)


def _role(rel: str) -> FileRole | WeightsFormat | Literal["code", "skip"] | None:
    """A file's role, or a weights format for weights, ``code``, ``skip``, or None when unknown."""
    name = rel.rsplit("/", 1)[-1].lower()
    stem, dot, suffix = name.rpartition(".")
    suffix = dot + suffix if dot else ""
    if name == "adapter_config.json" or name.startswith("adapter_model."):
        return "adapter"
    if suffix in WEIGHT_SUFFIXES:
        return WEIGHT_SUFFIXES[suffix]
    if suffix == ".py":
        return "code"
    if suffix in _OTHER_FRAMEWORK_SUFFIXES or name.endswith(".bin.index.json"):
        return "skip"
    if name in _TOKENIZER_NAMES:
        return "tokenizer"
    if suffix == ".jinja" or name == "chat_template.json":
        return "chat-template"
    if name == "generation_config.json":
        return "generation-config"
    if suffix in _DOC_SUFFIXES or (stem or name).split("-")[0] in _DOC_STEMS:
        return "doc"
    if suffix in _CONFIG_SUFFIXES:
        return "config"
    return None


def _load_json_object(path: Path, rel: str) -> dict[str, object]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError("manifest_invalid", [f"{rel}: not valid JSON ({exc})"]) from None
    if not isinstance(value, dict):
        raise PackageError("manifest_invalid", [f"{rel}: not a JSON object"])
    return value


def _positive_int(value: object) -> int | None:
    return value if type(value) is int and value >= 1 else None


def _normalise_license(value: str) -> str | None:
    text = value.strip().strip("'\"").strip()
    if text.lower() in _NO_LICENSE:
        return None
    return _HF_LICENSES.get(text.lower(), text)


def _readme_license(files: dict[str, Path]) -> str | None:
    readme = next((path for rel, path in files.items() if rel.lower() == "readme.md"), None)
    if readme is None:
        return None
    lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        match = re.match(r"license:\s*(\S.*)$", line)
        if match:
            return _normalise_license(match.group(1))
    return None


def _infer_hf(files: dict[str, Path], roles: dict[str, str]) -> dict[str, object]:
    if "config.json" not in files:
        raise PackageError("manifest_invalid", ["config.json: missing (for a GGUF model, pack the .gguf file)"])
    config = _load_json_object(files["config.json"], "config.json")
    tokenizer_config = (
        _load_json_object(files["tokenizer_config.json"], "tokenizer_config.json")
        if "tokenizer_config.json" in files
        else {}
    )
    for rel, obj in (("config.json", config), ("tokenizer_config.json", tokenizer_config)):
        if "auto_map" in obj:
            raise PackageError("format_forbidden", [f"{rel}: auto_map needs custom code, which packages may not carry"])
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        architecture = architectures[0]
    elif isinstance(config.get("model_type"), str):
        architecture = str(config["model_type"])
    else:
        raise PackageError("manifest_invalid", ["config.json: neither architectures nor model_type is set"])
    kind: ModelKind
    if "modules.json" in files:
        kind = "embedding"
    elif config.get("is_encoder_decoder") is True:
        kind = "seq2seq-lm"
    elif architecture.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")):
        kind = "causal-lm"
    elif architecture.endswith(("Model", "ForMaskedLM")):
        kind = "embedding"
    else:
        raise PackageError("architecture_unsupported", [f"config.json: cannot tell the kind of {architecture!r}"])
    context: dict[str, object] | None = None
    if kind == "embedding" and "sentence_bert_config.json" in files:
        sbert = _load_json_object(files["sentence_bert_config.json"], "sentence_bert_config.json")
        if (value := _positive_int(sbert.get("max_seq_length"))) is not None:
            context = {"value": value, "source": "config"}
    text_config = config.get("text_config")
    for obj in (config, text_config if isinstance(text_config, dict) else {}):
        for key in _CONTEXT_KEYS:
            if context is None and (value := _positive_int(obj.get(key))) is not None:
                context = {"value": value, "source": "config"}
    if context is None and "relative_attention_num_buckets" in config:
        context = {"value": 512, "source": "declared"}  # T5-style relative positions: the trained length
    if context is None:
        raise PackageError("manifest_invalid", [f"config.json: no context length ({', '.join(_CONTEXT_KEYS)})"])
    chat = bool(tokenizer_config.get("chat_template")) or "chat-template" in roles.values()
    capabilities: list[Capability] = ["embeddings"] if kind == "embedding" else ["text-generation"]
    if kind == "causal-lm" and chat:
        capabilities.append("chat")
    inferred: dict[str, object] = {
        "kind": kind, "architecture": architecture, "capabilities": capabilities, "context_length": context,
    }  # fmt: skip
    if "generation_config.json" in files:
        generation = _load_json_object(files["generation_config.json"], "generation_config.json")
        defaults = {
            key: float(value)
            for key, value, low, high in (
                ("temperature", generation.get("temperature"), 0.0, 2.0),
                ("top_p", generation.get("top_p"), 1e-9, 1.0),
            )
            if generation.get("do_sample") is True
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and low <= value <= high
        }
        if defaults:
            inferred["generation_defaults"] = defaults
    return inferred


def _infer_gguf(path: Path) -> tuple[dict[str, object], str | None]:
    try:
        meta = read_gguf_metadata(path)
    except MalformedWeights as exc:
        raise PackageError("weights_malformed", [f"{path.name}: {exc}"]) from None
    architecture = meta.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise PackageError("weights_malformed", [f"{path.name}: no general.architecture in the GGUF metadata"])
    context = _positive_int(meta.get(f"{architecture}.context_length"))
    if context is None:
        raise PackageError("weights_malformed", [f"{path.name}: no {architecture}.context_length in the GGUF metadata"])
    kind: ModelKind = "causal-lm"
    capabilities: list[Capability] = ["text-generation"]
    if f"{architecture}.pooling_type" in meta:
        kind = "embedding"
        capabilities = ["embeddings"]
    elif any(key.startswith("tokenizer.chat_template") and meta[key] for key in meta):
        capabilities = ["text-generation", "chat"]
    inferred: dict[str, object] = {
        "kind": kind, "architecture": architecture, "capabilities": capabilities,
        "context_length": {"value": context, "source": "gguf"},
    }  # fmt: skip
    file_type = meta.get("general.file_type")
    if type(file_type) is int and file_type in _GGUF_FILE_TYPES:
        method = _GGUF_FILE_TYPES[file_type]
        bits = {"F32": 32, "F16": 16, "BF16": 16}.get(method) or int(re.findall(r"\d+", method)[0])
        inferred["quantization"] = {"method": method, "bits": float(bits)}
    gguf_license = meta.get("general.license")
    return inferred, _normalise_license(gguf_license) if isinstance(gguf_license, str) else None


def _check_arguments(name: str, version: str, license: str | None) -> None:
    problems = []
    if not re.fullmatch(NAME_PATTERN, name):
        problems.append(f"name: {name!r} must be lowercase letters, digits, '.', '_' or '-' (1-128 characters)")
    if not is_semver(version):
        problems.append(f"version: {version!r} is not a SemVer 2.0.0 version")
    if license is not None:
        try:
            check_spdx_expression(license)
        except ValueError as exc:
            problems.append(f"license: {exc}")
    if problems:
        raise PackageError("manifest_invalid", problems)


def pack(
    source: Path,
    *,
    name: str,
    version: str,
    out: Path | None = None,
    license: str | None = None,
    default_license: str | None = None,
    generation_defaults: GenerationDefaults | None = None,
    allow_pickle: bool = False,
) -> PackageManifest:
    """Copy a Hugging Face model directory or one ``.gguf`` file into a package directory with its manifest.

    ``out`` defaults to :func:`default_package_dir`; it must not exist or be an empty directory. The package
    is assembled in a temporary sibling directory and renamed into place, so a failure leaves nothing behind.
    ``default_license`` applies only when neither ``license`` nor the source (README front matter, GGUF
    metadata) names one; without it such a source is refused, so no package claims a license by accident.
    ``generation_defaults`` replaces what ``generation_config.json`` suggests: GGUF files carry no sampling
    advice, so the packager states the model card's recommendation here.
    """
    source = Path(source)
    out = Path(out) if out is not None else default_package_dir(source, name, version)
    # An explicit license is the packager's statement and stands as written (only the case of a known
    # id is fixed), NOASSERTION included; "other" or "unknown" found inside a source tells nothing.
    license = _HF_LICENSES.get(license.strip().lower(), license.strip()) if license is not None else None
    _check_arguments(name, version, license)
    if source.is_symlink():
        raise PackageError("path_invalid", [f"{source}: symbolic links are refused; copy the target in"])
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: already exists and is not an empty directory")
    src_abs, out_abs = source.resolve(), out.resolve()
    if out_abs == src_abs or src_abs in out_abs.parents or out_abs in src_abs.parents:
        raise ValueError(f"{out}: the package directory must be outside the source, and the source outside it")

    if source.is_file():
        if source.suffix.lower() != ".gguf":
            raise PackageError("manifest_invalid", [f"{source}: a single-file source must be a .gguf file"])
        selected: dict[str, tuple[Path, FileRole]] = {source.name: (source, "weights")}
        inferred, found_license = _infer_gguf(source)
        weights_format: WeightsFormat = "gguf"
    else:
        files = dict(_collect(source))
        roles = {rel: _role(rel) for rel in files}
        code = sorted(rel for rel, role in roles.items() if role == "code")
        if code:
            raise PackageError("format_forbidden", [f"{rel}: code files may not be packaged" for rel in code])
        unknown = sorted(rel for rel, role in roles.items() if role is None)
        if unknown:
            raise PackageError("path_invalid", [f"{rel}: no package role fits this file; remove it" for rel in unknown])
        present = [fmt for fmt in _FORMAT_PREFERENCE if fmt in roles.values()]
        if not present:
            raise PackageError("manifest_invalid", [f"{source}: no weights (*.safetensors, *.gguf, *.onnx, *.bin)"])
        weights_format = present[0]
        selected = {}
        for rel, role in roles.items():
            if role == weights_format:
                selected[rel] = (files[rel], "weights")
            elif role in get_args(FileRole):
                selected[rel] = (files[rel], role)  # type: ignore[assignment]
        inferred = _infer_hf(files, {rel: role for rel, (_, role) in selected.items()})
        found_license = _readme_license(files)
    pickles = sorted(rel for rel in selected if WEIGHT_SUFFIXES.get(Path(rel).suffix.lower()) == "pytorch-pickle")
    if pickles and not allow_pickle:
        advice = "pickle weights run code when loaded; convert to safetensors or pass --allow-pickle"
        raise PackageError("format_forbidden", [f"{rel}: {advice}" for rel in pickles])
    license = license or found_license or default_license
    if license is None:
        raise PackageError("manifest_invalid", ["license: none found in the source; pass --license SPDX-ID"])
    _check_arguments(name, version, license)

    out_abs.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_abs.name}-", dir=out_abs.parent))
    try:
        entries = []
        for rel, (path, role) in sorted(selected.items()):
            digest, size = copy_hashing(path, work / rel)
            entries.append({"path": rel, "digest": digest, "size": size, "role": role})
        document = {
            "schema_version": MANIFEST_SCHEMA_VERSION, "name": name, "version": version, "format": weights_format,
            "files": entries, "license": license, **inferred,
        }  # fmt: skip
        if generation_defaults is not None:
            document["generation_defaults"] = generation_defaults.model_dump(mode="json", exclude_none=True)
        capabilities = document.get("capabilities")
        if isinstance(capabilities, list) and "text-generation" in capabilities:
            # A generative model runs the standard tasks with the standard's templates until its packager says otherwise.
            document["capabilities"] = [*capabilities, "tasks"]
            document["task_templates"] = {task: {} for task in TASK_NAMES}
        try:
            manifest = PackageManifest.model_validate(document)
        except ValidationError as exc:
            raise validation_error(exc) from None
        write_manifest(manifest, work / MANIFEST_NAME)
        os.replace(work, out_abs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def write_manifest(manifest: PackageManifest, path: Path) -> None:
    """Write ``manifest`` as indented, key-sorted JSON via a temporary file and an atomic rename."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)
