"""Weight files read with the standard library alone: safetensors headers, GGUF metadata, suffixes.

The package tools and the reference registry both judge weights by these parsers, so a file one
accepts the other accepts too, and the standard never needs an ML framework to check a package.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import BinaryIO

from llmos_std.manifest import WeightsFormat

MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors library's own limit

WEIGHT_SUFFIXES: dict[str, WeightsFormat] = {
    ".safetensors": "safetensors", ".gguf": "gguf", ".onnx": "onnx", ".onnx_data": "onnx",
    ".bin": "pytorch-pickle", ".pt": "pytorch-pickle", ".pth": "pytorch-pickle", ".pkl": "pytorch-pickle",
    ".pickle": "pytorch-pickle", ".ckpt": "pytorch-pickle",
}  # fmt: skip

class MalformedWeights(ValueError):
    """A weights header that does not parse; the message says where."""


def open_nofollow(path: Path) -> BinaryIO:
    """Open for reading, refusing a symbolic link (a package holds regular files only)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


_ST_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


def check_safetensors(path: Path) -> None:
    """Parse a safetensors header and check every tensor's extent; raises ``MalformedWeights``."""
    size = path.stat().st_size
    with open_nofollow(path) as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise MalformedWeights("shorter than the 8-byte safetensors header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_SAFETENSORS_HEADER or 8 + length > size:
            raise MalformedWeights(f"header length {length} exceeds the file or the 100 MB limit")
        raw = stream.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedWeights(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise MalformedWeights("header is not a JSON object")
    data_len = size - 8 - length
    extents: list[tuple[int, int]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise MalformedWeights("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict):
            raise MalformedWeights(f"tensor {name!r}: entry is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ST_DTYPE_BITS:
            raise MalformedWeights(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise MalformedWeights(f"tensor {name!r}: shape is not a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise MalformedWeights(f"tensor {name!r}: data_offsets is not two integers")
        begin, end = offsets
        count = 1
        for dim in shape:
            count *= dim
        if not 0 <= begin <= end <= data_len or end - begin != (count * _ST_DTYPE_BITS[dtype] + 7) // 8:
            raise MalformedWeights(f"tensor {name!r}: data_offsets {offsets} do not fit its shape and the file")
        extents.append((begin, end))
    position = 0
    for begin, end in sorted(extents):
        if begin != position:
            raise MalformedWeights(f"tensor data has a gap or overlap at byte {position}")
        position = end
    if position != data_len:
        raise MalformedWeights(f"tensor data covers {position} of {data_len} bytes")


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
GgufValue = str | int | float | bool


class _GgufReader:
    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise MalformedWeights("GGUF metadata runs past the end of the file")
        return data

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.read(struct.calcsize(fmt)))
        return int(value)

    def count(self, per_item: int) -> int:
        n = self.unpack("<Q")
        if n * per_item > self.size - self.stream.tell():
            raise MalformedWeights(f"GGUF count {n} exceeds the file")
        return n

    def string(self) -> str:
        try:
            return self.read(self.count(1)).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedWeights("GGUF string is not UTF-8") from None

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
        raise MalformedWeights(f"unknown GGUF value type {kind}")


def read_gguf_metadata(path: Path) -> dict[str, GgufValue]:
    """The scalar and string metadata of a GGUF (v2/v3) file, after checking the tensor table parses."""
    size = path.stat().st_size
    with open_nofollow(path) as stream:
        reader = _GgufReader(stream, size)
        if reader.read(4) != b"GGUF":
            raise MalformedWeights("missing the GGUF magic bytes")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise MalformedWeights(f"unsupported GGUF version {version} (or a big-endian file)")
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
                raise MalformedWeights(f"GGUF tensor with {dims} dimensions")
            reader.read(8 * dims + 4)
            if reader.unpack("<Q") > size:
                raise MalformedWeights("GGUF tensor offset beyond the file")
    return metadata



def weights_problem(path: Path, fmt: WeightsFormat | None) -> str | None:
    """Why ``path`` does not parse as ``fmt`` (safetensors or GGUF; other formats are not inspected), or None."""
    try:
        if fmt == "safetensors":
            check_safetensors(path)
        elif fmt == "gguf":
            read_gguf_metadata(path)
    except MalformedWeights as exc:
        return str(exc)
    return None
