"""``llmos-ref serve``: run the reference server on loopback with the bundled or given models."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from reference_impl.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmos-ref", description="The LLMOS reference server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the LLMOS API")
    serve.add_argument("--host", default=os.environ.get("LLMOS_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("LLMOS_PORT", "8400")))
    serve.add_argument("--data-dir", type=Path, default=Path(os.environ.get("LLMOS_DATA_DIR", "data")))
    serve.add_argument("--model", dest="models", type=Path, action="append", default=[],
                       help="a Hugging Face model dir, a .gguf file or an llmos package dir (repeatable); default: the bundled models")
    serve.add_argument("--api-key", dest="api_keys", action="append", default=[k for k in [os.environ.get("LLMOS_API_KEY")] if k],
                       help="require this bearer key (repeatable; env LLMOS_API_KEY)")
    serve.add_argument("--insecure-local", action="store_true", default=os.environ.get("LLMOS_INSECURE_LOCAL") == "1",
                       help="serve without keys, on loopback only (discovery then claims no security profile)")
    serve.add_argument("--trusted-signer-key", dest="trusted_signer_keys", type=Path, action="append", default=[],
                       help="trust packages signed with this PEM public key (repeatable), besides the server's own local key")
    serve.add_argument("--cors-origin", dest="cors_origins", action="append", default=[],
                       help="allow this browser origin (scheme://host[:port]; repeatable; none by default)")
    serve.add_argument("--allow-host", dest="allowed_hosts", action="append", default=[],
                       help="accept this Host header in addition to loopback names")
    serve.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=os.environ.get("LLMOS_DEVICE", "auto"),
                       help="where models run (default auto: cuda, then mps, then cpu; env LLMOS_DEVICE)")
    serve.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default=os.environ.get("LLMOS_DTYPE", "auto"),
                       help="compute dtype (default auto: float32 on cpu, bfloat16 on cuda, float16 on mps)")
    serve.add_argument("--quantize", choices=["auto", "none", "int8", "int4"], default=os.environ.get("LLMOS_QUANTIZE", "auto"),
                       help="weight-only quantization on cpu (default auto: a GGUF's own precision, e.g. Q4 -> int4; "
                            "none: the exact float path)")
    serve.add_argument("--replicas", type=int, default=int(os.environ.get("LLMOS_REPLICAS", "0")),
                       help="serve on Ray Serve with this many engine replicas behind one endpoint (default: no Ray)")
    serve.add_argument("--ray-address", default=os.environ.get("LLMOS_RAY_ADDRESS"),
                       help="join this Ray cluster (e.g. ray://head:10001 or auto) instead of starting one; implies --replicas 1 at least")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from reference_impl.app import create_app, key_file
    from reference_impl.keys import KeyStore

    for path in args.models:
        if not path.exists():
            print(f"llmos-ref: no such model path: {path}", file=sys.stderr)
            return 2
    if args.insecure_local and args.host not in ("127.0.0.1", "localhost", "::1"):
        print("llmos-ref: --insecure-local serves on loopback only", file=sys.stderr)
        return 2
    settings = Settings(host=args.host, port=args.port, data_dir=args.data_dir, models=args.models, api_keys=args.api_keys,
                        insecure_local=args.insecure_local, cors_origins=args.cors_origins, trusted_signer_keys=args.trusted_signer_keys,
                        device=args.device, dtype=args.dtype, quantize=args.quantize)
    try:  # an unusable --device or --dtype is refused before anything starts
        from reference_impl.placement import EngineOptions, PlacementError, resolve

        resolve(EngineOptions(settings.device, settings.dtype, settings.quantize), None, text_model=True)
    except PlacementError as exc:
        print(f"llmos-ref: {exc}", file=sys.stderr)
        return 2
    if not settings.insecure_local:
        created = KeyStore(key_file(settings), settings.api_keys).ensure_admin_key()
        if created is not None:
            print(f"llmos-ref: created an admin API key (stored only as a hash in {key_file(settings)}); it is shown this once:\n\n"
                  f"    {created}\n\nsend it as 'Authorization: Bearer <key>', e.g.  export LLMOS_API_KEY={created}", flush=True)
    settings.allowed_hosts.extend(args.allowed_hosts)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        settings.allowed_hosts.append(args.host)
    if args.replicas > 0 or args.ray_address:
        from reference_impl.ray_serve import serve_on_ray

        serve_on_ray(settings, replicas=max(1, args.replicas), address=args.ray_address)
        return 0
    app = create_app(settings)
    print(f"llmos-ref: starting on http://{args.host}:{args.port} (discovery: /.well-known/llmos); data in {args.data_dir}; first start packs and installs the models", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
