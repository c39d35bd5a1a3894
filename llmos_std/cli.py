"""``llmos-std``: export the specification, and pack, validate, verify and digest model packages.

Exit codes: 0 success, 1 a manifest or package failed validation or verification, 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from llmos_std import packing, verification
from llmos_std.export import ExportError, export


def _print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _require(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")


def _export(args: argparse.Namespace) -> int:
    templates: Path | None = args.templates
    if templates is not None:
        _require(templates)
    try:
        written = export(args.out_dir, templates)
    except ExportError as exc:
        _print_error(f"export: {exc}")
        return 1
    print(f"wrote {len(written)} files to {args.out_dir}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    _require(args.path)
    manifest = verification.validate(args.path)
    print(f"OK {manifest.name}@{manifest.version} {manifest.digest()}")
    return 0


def _pack(args: argparse.Namespace) -> int:
    out: Path = args.out or packing.default_package_dir(args.source, args.name, args.version)
    manifest = packing.pack(
        args.source, name=args.name, version=args.version, out=out, license=args.license, allow_pickle=args.allow_pickle
    )
    print(out)
    print(manifest.digest())
    return 0


def _verify(args: argparse.Namespace) -> int:
    _require(args.package_dir)
    result = verification.verify(args.package_dir)
    if result.ok:
        print(f"OK {result.digest}")
        return 0
    for problem in result.problems:
        print(f"{problem} [{problem.code}]", file=sys.stderr)
    _print_error(f"verification failed: {len(result.problems)} problem(s)")
    return 1


def _digest(args: argparse.Namespace) -> int:
    _require(args.manifest)
    print(verification.validate(args.manifest).digest())
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from llmos_std.signing import generate_key_pair, signer_key_id

    public = generate_key_pair(args.private_key)
    public_path = args.private_key.with_suffix(".pub.pem")
    public_path.write_bytes(public)
    print(f"{args.private_key} (private, 0600)\n{public_path} (public; give it to the servers that should trust you)\nkey_id {signer_key_id(public)}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from llmos_std.signing import sign_package

    _require(args.package_dir)
    manifest = verification.validate(args.package_dir)
    path = args.package_dir / verification.MANIFEST_NAME
    document = json.loads(path.read_text(encoding="utf-8"))
    files = {entry.path: args.package_dir / entry.path for entry in manifest.files}
    document["signatures"] = [*document.get("signatures", []), sign_package(document, files, args.key)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: the manifest is either the old one or the signed one
    print(f"signed {manifest.name}@{manifest.version} {manifest.digest()} (digest unchanged; {len(document['signatures'])} signature(s))")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmos-std", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export_cmd = commands.add_parser("export", help="write spec/ (OpenAPI, JSON Schemas, prose) into OUT_DIR")
    export_cmd.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    export_cmd.add_argument("--templates", type=Path, metavar="DIR", help="prose templates (default OUT_DIR/src)")
    export_cmd.set_defaults(run=_export)

    validate_cmd = commands.add_parser("validate", help="validate a manifest file or package directory")
    validate_cmd.add_argument("path", type=Path, metavar="PATH")
    validate_cmd.set_defaults(run=_validate)

    pack_cmd = commands.add_parser("pack", help="package a Hugging Face model directory or a .gguf file")
    pack_cmd.add_argument("source", type=Path, metavar="SOURCE")
    pack_cmd.add_argument("--name", required=True, metavar="N")
    pack_cmd.add_argument("--version", required=True, metavar="V", help="SemVer 2.0.0")
    pack_cmd.add_argument(
        "--out", type=Path, metavar="DIR", help="package directory (default: <name>-<version> next to SOURCE)"
    )
    pack_cmd.add_argument("--license", metavar="SPDX", help="SPDX license expression (default: from the source)")
    pack_cmd.add_argument("--allow-pickle", action="store_true", help="accept pickle weights (loading them runs code)")
    pack_cmd.set_defaults(run=_pack)

    verify_cmd = commands.add_parser("verify", help="re-hash a package directory against its manifest")
    verify_cmd.add_argument("package_dir", type=Path, metavar="PACKAGE_DIR")
    verify_cmd.set_defaults(run=_verify)

    digest_cmd = commands.add_parser("digest", help="print the package digest of a manifest")
    digest_cmd.add_argument("manifest", type=Path, metavar="MANIFEST")
    digest_cmd.set_defaults(run=_digest)

    keygen_cmd = commands.add_parser("keygen", help="create an ECDSA P-256 signing key pair")
    keygen_cmd.add_argument("private_key", type=Path, metavar="PRIVATE_KEY_PEM")
    keygen_cmd.set_defaults(run=_keygen)

    sign_cmd = commands.add_parser("sign", help="add a model-signing signature to a package directory's manifest")
    sign_cmd.add_argument("package_dir", type=Path, metavar="PACKAGE_DIR")
    sign_cmd.add_argument("--key", type=Path, required=True, metavar="PRIVATE_KEY_PEM")
    sign_cmd.set_defaults(run=_sign)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage (exit 2) or help (exit 0)
        return exc.code if isinstance(exc.code, int) else 2
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except verification.PackageError as exc:
        for problem in exc.problems:
            print(f"{problem} [{exc.code}]", file=sys.stderr)
        _print_error(f"{args.command} failed: {exc.code}")
        return 1
    except (OSError, ValueError) as exc:
        _print_error(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
