"""Local package operations: pack a model directory or GGUF file, validate a manifest, verify a package.

Everything streams (1 MiB chunks), so multi-GB weights cost flat memory; weights headers (safetensors,
GGUF) are parsed here with the standard library so that the standard never needs an ML framework.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from pydantic import ValidationError

from llmos_std.errors import ERROR_CODES
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

MANIFEST_NAME = "llmos-package.json"
CHUNK_SIZE = 1 << 20
MAX_MANIFEST_BYTES = 16 << 20
MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors library's own limit

PackageErrorCode = Literal[
    "manifest_invalid",
    "manifest_blob_unknown",
    "path_invalid",
    "digest_invalid",
    "size_invalid",
    "weights_malformed",
    "format_forbidden",
    "architecture_unsupported",
]
if not set(get_args(PackageErrorCode)) <= set(ERROR_CODES):  # pragma: no cover - guards the table
    raise RuntimeError("PackageErrorCode names a code missing from llmos_std.errors")


class PackageError(Exception):
    """A package that cannot be packed, validated or trusted; ``problems`` lists every reason found."""

    def __init__(self, code: PackageErrorCode, problems: list[str]) -> None:
        super().__init__("; ".join(problems) if problems else code)
        self.code: PackageErrorCode = code
        self.problems = list(problems)


@dataclass(frozen=True)
class VerifyProblem:
    code: PackageErrorCode
    path: str
    """The package-relative path of the file at fault."""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class VerifyResult:
    manifest: PackageManifest
    digest: str
    """The package identity (sha256 of the canonical manifest without signatures)."""
    problems: tuple[VerifyProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class _Malformed(Exception):
    """A weights header that does not parse; the message says where."""


# ---------------------------------------------------------------- hashing


def _open_nofollow(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


def _chunks(stream: BinaryIO) -> Iterator[memoryview]:
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while n := stream.readinto(buffer):  # type: ignore[attr-defined]
        yield view[:n]


def hash_file(path: Path) -> tuple[str, int]:
    """``("sha256:<hex>", size)`` of a file, read in 1 MiB chunks into one reused buffer."""
    digest = hashlib.sha256()
    size = 0
    with _open_nofollow(Path(path)) as stream:
        for chunk in _chunks(stream):
            digest.update(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    """Copy and hash in one pass, so the digest describes exactly the bytes written."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with _open_nofollow(src) as source, open(dst, "xb") as target:
        for chunk in _chunks(source):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


# ---------------------------------------------------------------- weights headers

_ST_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


def _check_safetensors(path: Path) -> None:
    """Parse a safetensors header and check every tensor's extent; raises ``_Malformed``."""
    size = path.stat().st_size
    with _open_nofollow(path) as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise _Malformed("shorter than the 8-byte safetensors header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_SAFETENSORS_HEADER or 8 + length > size:
            raise _Malformed(f"header length {length} exceeds the file or the 100 MB limit")
        raw = stream.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Malformed(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise _Malformed("header is not a JSON object")
    data_len = size - 8 - length
    extents: list[tuple[int, int]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise _Malformed("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict):
            raise _Malformed(f"tensor {name!r}: entry is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ST_DTYPE_BITS:
            raise _Malformed(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise _Malformed(f"tensor {name!r}: shape is not a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise _Malformed(f"tensor {name!r}: data_offsets is not two integers")
        begin, end = offsets
        count = 1
        for dim in shape:
            count *= dim
        if not 0 <= begin <= end <= data_len or end - begin != (count * _ST_DTYPE_BITS[dtype] + 7) // 8:
            raise _Malformed(f"tensor {name!r}: data_offsets {offsets} do not fit its shape and the file")
        extents.append((begin, end))
    position = 0
    for begin, end in sorted(extents):
        if begin != position:
            raise _Malformed(f"tensor data has a gap or overlap at byte {position}")
        position = end
    if position != data_len:
        raise _Malformed(f"tensor data covers {position} of {data_len} bytes")


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
GgufValue = str | int | float | bool


class _GgufReader:
    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise _Malformed("GGUF metadata runs past the end of the file")
        return data

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.read(struct.calcsize(fmt)))
        return int(value)

    def count(self, per_item: int) -> int:
        n = self.unpack("<Q")
        if n * per_item > self.size - self.stream.tell():
            raise _Malformed(f"GGUF count {n} exceeds the file")
        return n

    def string(self) -> str:
        try:
            return self.read(self.count(1)).decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed("GGUF string is not UTF-8") from None

    def value(self, kind: int, depth: int = 0) -> GgufValue | None:
        """A scalar or string value; arrays are skipped (None), as nothing packing needs is an array."""
        if kind in _GGUF_SCALARS:
            fmt = _GGUF_SCALARS[kind]
            (value,) = struct.unpack(fmt, self.read(struct.calcsize(fmt)))
            return value  # type: ignore[no-any-return]
        if kind == _GGUF_STRING:
            return self.string()
        if kind == _GGUF_ARRAY and depth < 4:
            item_kind = self.unpack("<I")
            if item_kind in _GGUF_SCALARS:
                width = struct.calcsize(_GGUF_SCALARS[item_kind])
                self.stream.seek(self.count(width) * width, os.SEEK_CUR)
            else:
                for _ in range(self.count(8)):
                    self.value(item_kind, depth + 1)
            return None
        raise _Malformed(f"unknown GGUF value type {kind}")


def _read_gguf_metadata(path: Path) -> dict[str, GgufValue]:
    """The scalar and string metadata of a GGUF (v2/v3) file, after checking the tensor table parses."""
    size = path.stat().st_size
    with _open_nofollow(path) as stream:
        reader = _GgufReader(stream, size)
        if reader.read(4) != b"GGUF":
            raise _Malformed("missing the GGUF magic bytes")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise _Malformed(f"unsupported GGUF version {version} (or a big-endian file)")
        tensors = reader.count(8 + 4 + 4 + 8)
        entries = reader.count(8 + 4)
        metadata: dict[str, GgufValue] = {}
        for _ in range(entries):
            key = reader.string()
            value = reader.value(reader.unpack("<I"))
            if value is not None:
                metadata[key] = value
        for _ in range(tensors):
            reader.string()
            dims = reader.unpack("<I")
            if dims > 8:
                raise _Malformed(f"GGUF tensor with {dims} dimensions")
            reader.read(8 * dims + 4)
            if reader.unpack("<Q") > size:
                raise _Malformed("GGUF tensor offset beyond the file")
    return metadata


# ---------------------------------------------------------------- pack

_WEIGHT_SUFFIXES: dict[str, WeightsFormat] = {
    ".safetensors": "safetensors", ".gguf": "gguf", ".onnx": "onnx", ".onnx_data": "onnx",
    ".bin": "pytorch-pickle", ".pt": "pytorch-pickle", ".pth": "pytorch-pickle", ".pkl": "pytorch-pickle",
    ".ckpt": "pytorch-pickle",
}  # fmt: skip
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
    if suffix in _WEIGHT_SUFFIXES:
        return _WEIGHT_SUFFIXES[suffix]
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
        meta = _read_gguf_metadata(path)
    except _Malformed as exc:
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
    pickles = sorted(rel for rel in selected if _WEIGHT_SUFFIXES.get(Path(rel).suffix.lower()) == "pytorch-pickle")
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
            digest, size = _copy_hashing(path, work / rel)
            entries.append({"path": rel, "digest": digest, "size": size, "role": role})
        document = {
            "schema_version": MANIFEST_SCHEMA_VERSION, "name": name, "version": version, "format": weights_format,
            "files": entries, "license": license, **inferred,
        }  # fmt: skip
        if generation_defaults is not None:
            document["generation_defaults"] = generation_defaults.model_dump(mode="json", exclude_none=True)
        try:
            manifest = PackageManifest.model_validate(document)
        except ValidationError as exc:
            raise _validation_error(exc) from None
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


# ---------------------------------------------------------------- validate


def _problem_code(loc: tuple[int | str, ...]) -> PackageErrorCode:
    if len(loc) == 3 and loc[0] == "files" and loc[2] == "path":
        return "path_invalid"
    if loc and loc[-1] == "digest":
        return "digest_invalid"
    return "manifest_invalid"


def _validation_error(exc: ValidationError) -> PackageError:
    codes: set[PackageErrorCode] = set()
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{'.'.join(str(part) for part in loc)}: {message}" if loc else message)
        codes.add(_problem_code(loc))
    return PackageError(codes.pop() if len(codes) == 1 else "manifest_invalid", problems)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys {duplicates}")
    return dict(pairs)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def validate(path: Path) -> PackageManifest:
    """Read and validate a manifest file (or a package directory's ``llmos-package.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    label = path.name
    if not path.is_file():
        raise PackageError("manifest_invalid", [f"{label}: no such file"])
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise PackageError("manifest_invalid", [f"{label}: larger than {MAX_MANIFEST_BYTES} bytes"])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PackageError("manifest_invalid", [f"{label}: not valid JSON: {exc}"]) from None
    try:
        manifest = PackageManifest.model_validate_json(text)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    listed = [i for i, entry in enumerate(manifest.files) if entry.path.casefold() == MANIFEST_NAME]
    if listed:
        raise PackageError("path_invalid", [f"files.{i}.path: the manifest cannot list itself" for i in listed])
    return manifest


# ---------------------------------------------------------------- verify


def _scan(package_dir: Path) -> tuple[set[str], list[VerifyProblem]]:
    """The package's regular files (relative POSIX paths) and a problem for each link or special file."""
    regular: set[str] = set()
    problems: list[VerifyProblem] = []
    for root, dirs, files in os.walk(package_dir, followlinks=False):
        base = Path(root)
        for name in sorted(dirs + files):
            path = base / name
            rel = path.relative_to(package_dir).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                problems.append(VerifyProblem("path_invalid", rel, "symbolic link; packages hold regular files only"))
            elif stat.S_ISREG(mode):
                regular.add(rel)
            elif not stat.S_ISDIR(mode):
                problems.append(VerifyProblem("path_invalid", rel, "not a regular file"))
    return regular, problems


def _check_weights(path: Path, rel: str, declared: WeightsFormat | None) -> VerifyProblem | None:
    fmt = declared or _WEIGHT_SUFFIXES.get(path.suffix.lower())
    try:
        if fmt == "safetensors":
            _check_safetensors(path)
        elif fmt == "gguf":
            _read_gguf_metadata(path)
    except _Malformed as exc:
        return VerifyProblem("weights_malformed", rel, f"does not parse as {fmt}: {exc}")
    return None


def verify(package_dir: Path) -> VerifyResult:
    """Validate the manifest, then re-hash every file; the result lists every problem found.

    Raises :class:`PackageError` only when the manifest itself is invalid.
    """
    package_dir = Path(package_dir)
    if (package_dir / MANIFEST_NAME).is_symlink():
        raise PackageError("path_invalid", [f"{MANIFEST_NAME}: symbolic link; packages hold regular files only"])
    manifest = validate(package_dir)
    regular, problems = _scan(package_dir)
    linked = {p.path for p in problems}
    listed = {entry.path for entry in manifest.files}
    for entry in manifest.files:
        path = package_dir / entry.path
        if entry.path not in regular:
            if not any(entry.path == link or entry.path.startswith(link + "/") for link in linked):
                problems.append(VerifyProblem("manifest_blob_unknown", entry.path, "listed but missing"))
            continue
        size = path.stat().st_size
        if size != entry.size:
            problems.append(VerifyProblem("size_invalid", entry.path, f"size {size} bytes, manifest says {entry.size}"))
            continue
        digest, _ = hash_file(path)
        if digest != entry.digest:
            message = f"digest {digest}, manifest says {entry.digest}"
            problems.append(VerifyProblem("digest_invalid", entry.path, message))
            continue
        if entry.role in ("weights", "adapter"):
            problem = _check_weights(path, entry.path, manifest.format if entry.role == "weights" else None)
            if problem is not None:
                problems.append(problem)
    for rel in sorted(regular - listed - {MANIFEST_NAME}):
        problems.append(VerifyProblem("path_invalid", rel, "not listed in the manifest"))
    return VerifyResult(manifest=manifest, digest=manifest.digest(), problems=tuple(problems))
