"""`python -m jupyter_mldeploy.serving --model MODULE:CALLABLE | model.pkl --name NAME ...`

Prints one line to stderr once listening (with the real port when `--port 0`), then serves until
SIGTERM or SIGINT. Prediction lines go to stdout, or to `--log-file`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .httpd import Limits
from .server import ServingError, _stderr, banner, make_server


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jupyter_mldeploy.serving",
                                description="Serve one model over the Open Inference Protocol (KServe v2).")
    p.add_argument("--model", required=True,
                   help="MODULE:CALLABLE (rows -> predictions) or a path to a pickled model with .predict")
    p.add_argument("--name", required=True, help="the model name in /v2/models/{name}")
    p.add_argument("--version", default="1", help="the model version (default 1)")
    p.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one (default 8080)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; use 0.0.0.0 inside a container)")
    p.add_argument("--log-file", default=None, help="append prediction lines here instead of stdout")
    p.add_argument("--workers", type=int, default=Limits.workers,
                   help=f"requests served at once; more connections wait, then get 503 (default "
                        f"{Limits.workers})")
    p.add_argument("--max-body", type=int, default=Limits.max_body, metavar="BYTES",
                   help=f"largest request body accepted, else 413 (default {Limits.max_body})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        limits = Limits(workers=args.workers, max_body=args.max_body,
                        body_budget=max(Limits.body_budget, 4 * args.max_body))
        server = make_server(args.model, name=args.name, version=args.version, port=args.port,
                             host=args.host, log=args.log_file or sys.stdout, limits=limits)
    except ServingError as e:
        _stderr(f"Cannot start the model server: {e}")
        return 2
    except Exception as e:  # import, unpickling or bind failures: one line, not a traceback
        _stderr(f"Cannot start the model server: {type(e).__name__}: {e}")
        return 2

    def _stop(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever to return, so it must run off the main thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _stderr(banner(server))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
