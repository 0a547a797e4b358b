"""``manygrad serve RUN``: answer predictions over HTTP (``GET /health``, ``POST /predict``)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="serve a trained run over HTTP",
        description="Serve RUN's model: GET /health, and POST /predict with an image "
        "(image/png, image/jpeg), a .npy array (application/x-npy: one sample or a batch) or "
        'JSON ({"inputs": [...]}), answered with {"predictions": [...]} as `manygrad predict '
        "--json` prints them. Concurrent requests run through the model together. SIGTERM "
        "(or Ctrl-C) finishes the requests in flight, then stops. Needs manygrad[serve].",
    )
    a = p.add_argument
    a("run", metavar="RUN", help="run directory (from manygrad train)")
    a("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
      "machine only; 0.0.0.0 for every interface)")  # fmt: skip
    a("--port", type=int, default=8000, help="TCP port (default 8000)")
    a("--max-batch", type=int, default=32, help="most samples per model call (default 32)")
    a("--max-wait-ms", type=float, default=5.0,
      help="how long a request waits for others to batch with (default 5)")  # fmt: skip
    a("--top-k", type=int, default=3, help="classes per prediction (default 3)")
    a("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    a("--max-body-mb", type=float, default=16.0, help="largest request body (default 16)")
    a("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
      help="server log level (default warning)")  # fmt: skip
    return p


def run(args) -> int:
    from ..errors import ManygradError

    for name, v, lo in (("--max-batch", args.max_batch, 1), ("--top-k", args.top_k, 1),
                        ("--port", args.port, 0)):  # fmt: skip
        if v < lo:
            print(f"error: {name} must be at least {lo}, got {v}", file=sys.stderr)
            return 2
    if args.max_wait_ms < 0 or args.max_body_mb <= 0:
        print("error: --max-wait-ms must be >= 0 and --max-body-mb > 0", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from ..serve import create_app

        app = create_app(args.run, args.max_batch, args.max_wait_ms, args.top_k, args.device,
                         int(args.max_body_mb * (1 << 20)))  # fmt: skip
    except ImportError as e:
        print(f"error: {e}; pip install 'manygrad[serve]'", file=sys.stderr)
        return 2
    except (ManygradError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"serving {args.run} on http://{args.host}:{args.port} (POST /predict, GET /health; "
          f"max batch {args.max_batch}, max wait {args.max_wait_ms:g} ms)", flush=True)  # fmt: skip
    # NOTE: uvicorn handles SIGTERM and SIGINT: it stops accepting, lets the requests in
    # flight finish, then runs the app's shutdown (which drains the batch queue)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            lifespan="on", timeout_graceful_shutdown=30)  # fmt: skip
    server = _server_class(uvicorn)(config)
    try:
        server.run()
    except (OSError, SystemExit) as e:  # NOTE: uvicorn exits when it can't bind the port
        why = e if isinstance(e, OSError) else "is the port taken, or the address not local?"
        print(f"error: can't listen on {args.host}:{args.port}: {why}", file=sys.stderr)
        return 2
    if not server.started:
        print(f"error: the server did not start on {args.host}:{args.port} (is the port "
              "taken?)", file=sys.stderr)  # fmt: skip
        return 2
    print("stopped", flush=True)
    return 0


def _server_class(uvicorn):
    class Server(uvicorn.Server):
        """uvicorn's server, ending with status 0 after a signal-initiated drain.

        NOTE: uvicorn re-raises the signal it caught once it has shut down, which would end
        the process by SIGTERM instead of returning from `manygrad serve` normally."""

        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return Server
