"""`python -m rzero_lib.engine.solver_server.cli serve --model SPEC --port N`: run the minimal Solver server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rzero_lib.engine.solver_server.http_server import serve
from rzero_lib.engine.solver_server.protocol import HOST


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rzero_lib.engine.solver_server.cli",
                                     description="Minimal OpenAI-compatible completions server (transformers).")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a model on /v1/completions, /v1/models and /health")
    s.add_argument("--model", required=True, help="model spec (builtin:..., folder, adapter folder, hub id)")
    s.add_argument("--host", default=HOST)
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--dtype", default="auto")
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=64, help="sequences per generate() call")
    args = parser.parse_args(argv)
    try:
        serve(args.model, host=args.host, port=args.port, dtype=args.dtype, device=args.device,
              batch_size=args.batch_size)
    except (OSError, ValueError) as e:  # ModelSpecError is a ValueError; a port in use an OSError
        print(f"solver server failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
