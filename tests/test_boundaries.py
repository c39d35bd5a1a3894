"""Architecture boundaries, enforced: the standard imports no implementation, and the kit and the server never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each row: a package and the top-level modules it must never import.
FORBIDDEN = {
    "llmos_std": {"reference_impl", "conformance", "torch", "transformers", "fastapi", "starlette", "numpy"},
    "reference_impl": {"conformance"},
    "conformance": {"reference_impl", "torch", "transformers"},
}
ALLOWED_IN_LLMOS_STD = {"pydantic", "pydantic_core", "jsonschema", "llmos_std", "typing_extensions", "httpx", "model_signing", "cryptography"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_boundaries(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        bad = _imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_llmos_std_imports_only_stdlib_pydantic_jsonschema_and_httpx_in_the_client_package() -> None:
    import sys

    for path in (ROOT / "llmos_std").rglob("*.py"):
        third_party = {name for name in _imports(path) if name not in sys.stdlib_module_names} - ALLOWED_IN_LLMOS_STD
        assert not third_party, f"{path.name} imports {sorted(third_party)}"
        if path.parent.name != "client":
            assert "httpx" not in _imports(path), f"{path.name}: httpx belongs to llmos_std/client/ alone"
        if path.name != "signing.py":
            assert not _imports(path) & {"model_signing", "cryptography"}, f"{path.name}: model-signing belongs to llmos_std/signing.py alone"


def test_torch_is_imported_only_by_the_engine() -> None:
    # The engine: models, the batcher, the torch thread, weight quantization, device placement, Ray replicas.
    engine_modules = {"engine.py", "batching.py", "compute.py", "quantization.py", "placement.py", "replicas.py",
                      "attention.py"}
    for path in (ROOT / "reference_impl").rglob("*.py"):
        if path.name in engine_modules:
            continue
        assert not _imports(path) & {"torch", "transformers"}, f"{path.name} imports torch/transformers"
