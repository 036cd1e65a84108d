"""``tf4ctr serve``: the command, over uvicorn (imported only when the command runs).

uvicorn is the ASGI server: it is the reference one of the ecosystem, runs on uvloop and
httptools when they are installed (both in the serve extra), drains in-flight requests on
SIGTERM, and has a supervisor for ``--workers N`` that also replaces workers one at a time on
SIGHUP. The model is loaded and test-scored before the port opens, so a bad source is one
error line and exit 2, not a server that never becomes ready.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from tf4ctr.errors import UserError

__all__ = ["add_serve_command", "cmd_serve"]


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_serve_command(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="score raw rows over HTTP (ONNX Runtime, dynamic batching, reload, metrics)",
        description="Serve a finished run (exported to ONNX on start) or an existing export "
        "(model.onnx with model.onnx.preprocessor.json beside it) on HTTP: POST /v1/predict "
        'with {"instances": [row, ...]} or {"context": {...}, "candidates": [...]}; '
        "GET /healthz, /readyz, /metrics (Prometheus), /v1/model; POST /admin/reload "
        "(localhost only) or SIGHUP loads a new model without dropping a request; SIGTERM "
        "drains and exits 0. Needs tf4ctr[serve].",
        epilog=_examples(
            "tf4ctr serve runs/my-first-run",
            "tf4ctr serve model.onnx --port 9000 --workers 2",
            "tf4ctr serve model.onnx --no-batching",
            'curl -s localhost:8000/v1/predict -d \'{"instances": [{"user": "u7", ...}]}\'',
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="RUN_DIR|EXPORT", help="a finished run or an .onnx export")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    p.add_argument(
        "--quantize", choices=["int8"],
        help="export a run directory with int8 weights (tf4ctr export --quantize): about 3x "
        "faster scoring on a CPU with VNNI, scores move a little (Frappe_x1, TF4CTR: test "
        "AUC -6e-6); an export given as the source must already be quantised",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=int, default=1,
        help="ONNX Runtime threads per worker (default: 1, leaving a core to the event loop "
        "that parses and encodes; 0: ONNX Runtime's choice)",
    )  # fmt: skip
    g = p.add_argument_group("dynamic batching")
    g.add_argument("--no-batching", action="store_true", help="score each request alone")
    g.add_argument(
        "--max-batch-rows",
        type=int,
        default=256,
        help="rows per merged call; a larger request goes alone (default: %(default)s)",
    )
    g.add_argument(
        "--max-wait-ms", type=float, default=1.0,
        help="longest a request waits for others to join its batch (only while others are "
        "being read; a lone request never waits)",
    )  # fmt: skip
    g.add_argument(
        "--max-queue-rows", type=int, default=65536,
        help="rows accepted and not yet answered; past it a request gets 503 + Retry-After",
    )  # fmt: skip
    g = p.add_argument_group("limits")
    g.add_argument("--max-rows", type=int, default=4096, help="rows in one request (else 413)")
    g.add_argument("--max-body-mb", type=float, default=8.0, help="body size (else 413)")
    g.add_argument(
        "--drain-timeout", type=float, default=30.0,
        help="seconds SIGTERM waits for in-flight requests",
    )  # fmt: skip
    p.set_defaults(func=cmd_serve)


def _settings(args: argparse.Namespace, source: str) -> Any:
    from tf4ctr.server.app import ServeSettings
    from tf4ctr.server.batching import BatchSettings
    from tf4ctr.server.requests import Limits

    positive = {
        "--workers": args.workers, "--max-batch-rows": args.max_batch_rows,
        "--max-queue-rows": args.max_queue_rows, "--max-rows": args.max_rows,
        "--max-body-mb": args.max_body_mb, "--drain-timeout": args.drain_timeout,
    }  # fmt: skip
    for flag, value in positive.items():
        if value <= 0:
            raise UserError(f"{flag}: must be positive, got {value}")
    if args.threads < 0 or args.max_wait_ms < 0:
        raise UserError("--threads and --max-wait-ms must not be negative")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port: {args.port} is not a port number")
    if args.max_rows > args.max_queue_rows:
        raise UserError("--max-rows must not exceed --max-queue-rows (such a request could never be queued)")  # fmt: skip
    return ServeSettings(
        source=source,
        threads=args.threads,
        batch=BatchSettings(
            enabled=not args.no_batching,
            max_batch_rows=args.max_batch_rows,
            max_wait=args.max_wait_ms / 1e3,
            max_queue_rows=args.max_queue_rows,
        ),
        limits=Limits(max_rows=args.max_rows, max_body_bytes=int(args.max_body_mb * (1 << 20))),
        drain_timeout=args.drain_timeout,
        quantize=args.quantize,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import onnxruntime  # noqa: F401
        import orjson  # noqa: F401
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise UserError(f"tf4ctr serve needs tf4ctr[serve] ({exc.name} is missing)") from None
    from tf4ctr.server.app import SETTINGS_ENV, create_app
    from tf4ctr.server.model import ModelSlot, export_source

    _settings(args, args.source)  # flags checked before any export
    scratch = None
    source = Path(args.source)
    if source.is_dir() and args.workers > 1:  # export once; each worker reads the file
        scratch = Path(tempfile.mkdtemp(prefix="tf4ctr-serve-"))
        source = export_source(source, scratch, args.quantize)
    settings = _settings(args, str(source))
    slot = ModelSlot(settings.source, settings.threads, settings.quantize)
    model = slot.reload()  # UserError: one line, exit 2, no port opened
    print(
        f"tf4ctr serve: {model.name} version {model.version} on http://{args.host}:{args.port} "
        f"({args.workers} worker(s), batching {'on' if settings.batch.enabled else 'off'})",
        file=sys.stderr,
        flush=True,
    )
    common = {
        "host": args.host, "port": args.port, "log_level": "info", "access_log": False,
        "timeout_graceful_shutdown": settings.drain_timeout, "lifespan": "on",
    }  # fmt: skip
    # uvicorn drains on SIGTERM, then raises the signal again for the handler it found: make
    # that one do nothing, so a drained server exits 0 (the CLI's own turns it into 143)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        if args.workers == 1:
            uvicorn.run(create_app(settings, model), **common)
        else:
            os.environ[SETTINGS_ENV] = settings.to_json()
            uvicorn.run(
                "tf4ctr.server.app:app_from_env", factory=True, workers=args.workers, **common
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0
