"""Load on ``tf4ctr serve``: a bounded closed-loop generator on the loopback interface.

    python benchmarks/serve_load.py --conditions beside-other-jobs [--seconds 3]
    python benchmarks/serve_load.py --conditions idle --export model.onnx
    python benchmarks/serve_load.py --conditions idle --quantize int8

The model is TF4CTR at the paper's Frappe sizes (configs/frappe_x1/tf4ctr.yaml: embedding 16,
MLP_s [400, 400], MLP_c [400, 400, 400]), trained for ONE epoch on Frappe_x1 (rebuilt train)
so that its vocabularies and schema are Frappe's real ones; latency does not depend on how
well it is trained. It is built once under .bench-data/serve_load/ (a folder this benchmark
marks as its own) and reused; ``--export`` serves an existing export instead.

For request sizes 1 (``instances``), 256 and 700 (the ranking form: one user's context, that
many candidate items, from Frappe_x1's test rows), at concurrency 1, 8 and 64, with dynamic
batching on (the defaults) and off, C clients each send a request and wait for its answer,
over keep-alive connections, for ``--seconds`` per cell or ``--max-requests``, whichever ends
first; every socket read has a timeout. The two servers (batching on, off) run side by side,
idle in turn, and each cell is measured on one then the other. Beside it, the floor: ONNX Runtime called in-process
on the same rows (encoded once), and RowEncoder + ONNX Runtime (what a request costs without
HTTP). Prints a table and writes benchmarks/results/serve_load.json, labelled with
``--conditions``: a run beside other jobs is not an idle-machine result, and says so.

``--quantize int8`` serves the same run exported with int8 weights (``tf4ctr export --quantize
int8``) and writes benchmarks/results/serve_load_int8.json; its floor table also times the
float graph, in the same process, for the ratio. What int8 costs in AUC is
benchmarks/quantize_accuracy.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from owned import MARKER, make_owned  # noqa: E402

HOST = "127.0.0.1"
SIZES = (1, 256, 700)
CONCURRENCY = (1, 8, 64)
CONTEXT = ("user", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")  # fmt: skip
TARGETS = {
    "1 row p99 at concurrency 1 (ms)": 2.0,
    "700 candidates p99 at concurrency 8 (ms)": 30.0,
    "peak rows/s": 50_000,
}
CONDITIONS = {
    "idle": "idle machine",
    "beside-other-jobs": "measured beside other jobs (not an idle-machine result)",
}


def prepare_export(work: Path) -> Path:
    """TF4CTR at the paper's Frappe sizes, one epoch on Frappe_x1, exported (reused if there)."""
    export = work / "tf4ctr-frappe.onnx"
    if export.is_file() and export.with_name(export.name + ".preprocessor.json").is_file():
        return export
    make_owned(work)
    config = ROOT / "configs" / "frappe_x1" / "tf4ctr.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    tf4ctr = [sys.executable, "-m", "tf4ctr"]
    subprocess.run(
        [*tf4ctr, "train", "--config", str(config), "train.epochs=1", f"output_dir={work}",
         f"cache_dir={work / 'cache'}", "name=serve-load", "--no-progress"],
        check=True, env=env,
    )  # fmt: skip
    subprocess.run(
        [*tf4ctr, "export", str(work / "serve-load"), "--format", "onnx", "--output", str(export)],
        check=True, env=env,
    )  # fmt: skip
    return export


def quantized_export(work: Path) -> Path:
    """The same one-epoch run as :func:`prepare_export`'s, exported with int8 weights."""
    float_export = prepare_export(work)
    export = work / "tf4ctr-frappe-int8.onnx"
    if not (export.is_file() and export.with_name(export.name + ".preprocessor.json").is_file()):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run(
            [sys.executable, "-m", "tf4ctr", "export", str(work / "serve-load"), "--format",
             "onnx", "--quantize", "int8", "--output", str(export)],
            check=True, env=env,
        )  # fmt: skip
    assert float_export.is_file()
    return export


def frappe_rows(n: int) -> list[dict[str, str]]:
    path = ROOT.parent / "shared" / "data" / "Frappe_x1" / "test.csv"
    if not path.is_file():
        sys.exit(f"{path.name}: Frappe_x1's test rows not found under ../shared/data")
    with path.open(newline="") as f:
        rows = []
        for row in csv.DictReader(f):
            row.pop("label", None)
            rows.append(row)
            if len(rows) == n:
                return rows
    return rows


def bodies(rows: list[dict[str, str]]) -> dict[int, bytes]:
    out = {1: json.dumps({"instances": rows[:1]}).encode()}
    for size in SIZES[1:]:
        context = {k: rows[0][k] for k in CONTEXT}
        candidates = [{"item": r["item"]} for r in rows[:size]]
        out[size] = json.dumps({"context": context, "candidates": candidates}).encode()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, export: Path, extra: list[str]) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", "tf4ctr", "serve", str(export), "--host", HOST,
               "--port", str(self.port), *extra]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(
                    f"server exited {self.proc.returncode}: {self.proc.stderr.read().decode()[-2000:]}"
                )  # type: ignore[union-attr]
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit("server not listening after 120 s")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


async def _client(port: int, request: bytes, stop_at: float, budget: list[int], times: list[float], timeout: float, rejected: list[int]) -> None:  # fmt: skip
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    try:
        while budget[0] > 0 and time.perf_counter() < stop_at:
            budget[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await asyncio.wait_for(reader.readexactly(length), timeout)
            if status == 503:  # the bounded queue said no: counted, and the client backs off
                rejected[0] += 1
                await asyncio.sleep(0.005)
                continue
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
            times.append(time.perf_counter() - start)
    finally:
        writer.close()


async def _cell(port: int, body: bytes, concurrency: int, seconds: float, max_requests: int) -> tuple[list[float], float, int]:  # fmt: skip
    request = (
        f"POST /v1/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    warm: list[float] = []
    await asyncio.gather(*(_client(port, request, time.perf_counter() + 0.3, [50], warm, 30, [0]) for _ in range(concurrency)))  # fmt: skip
    times: list[float] = []
    budget, rejected = [max_requests], [0]
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _client(port, request, start + seconds, budget, times, 30, rejected)
            for _ in range(concurrency)
        )
    )
    return times, time.perf_counter() - start, rejected[0]


def summarize(times: list[float], rows_per_request: int, elapsed: float) -> dict[str, Any]:
    if not times:  # every request refused (503): no latency to report
        return {"requests": 0, "p50_ms": None, "p99_ms": None, "p999_ms": None, "rows_per_s": 0}
    ms = np.array(times) * 1e3
    return {
        "requests": len(times),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "p999_ms": round(float(np.percentile(ms, 99.9)), 3),
        "rows_per_s": round(len(times) * rows_per_request / elapsed),
    }


def floor(
    export: Path, rows: list[dict[str, str]], seconds: float, sizes: list[int], label: str = ""
) -> dict[str, dict[str, Any]]:
    """ONNX Runtime in-process on the same rows: the graph alone, and encode + graph."""

    from tf4ctr.serving import RowEncoder

    encoder = RowEncoder.from_file(export.with_name(export.name + ".preprocessor.json"))
    from tf4ctr.server.model import load_model

    session = load_model(export).session  # the server's own session options
    out: dict[str, dict[str, Any]] = {}
    for size in sizes:
        batch = [{**rows[0], "item": r["item"]} for r in rows[:size]] if size > 1 else rows[:1]
        cat, num = encoder.encode(batch)
        feeds = {"categorical": cat, "numeric": num}
        for name, fn in [("onnx_runtime", lambda f=feeds: session.run(None, f)),
                         ("encode_and_onnx_runtime", lambda b=batch: session.run(None, dict(zip(("categorical", "numeric"), encoder.encode(b), strict=True))))]:  # fmt: skip
            for _ in range(20):
                fn()
            times, start = [], time.perf_counter()
            while time.perf_counter() - start < seconds and len(times) < 100_000:
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            out[f"{name}{label} size {size}"] = {
                "size": size,
                **summarize(times, size, time.perf_counter() - start),
            }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", required=True, choices=sorted(CONDITIONS),
                        help="say whether the machine was idle; it goes into the results")  # fmt: skip
    parser.add_argument("--export", type=Path, help="serve this export instead of building one")
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per cell")
    parser.add_argument(
        "--server-args", default="", help="extra tf4ctr serve flags, e.g. '--threads 1'"
    )
    parser.add_argument("--quantize", choices=["int8"], help="serve the int8 export of the run")
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/results/serve_load[_int8].json"
    )
    parser.add_argument("--sizes", default="1,256,700", help="rows per request, comma-separated")
    parser.add_argument("--concurrency", default="1,8,64", help="clients, comma-separated")
    parser.add_argument("--batching", default="on,off", help="on, off, or on,off")
    args = parser.parse_args()
    work = ROOT / ".bench-data" / "serve_load"
    if args.export is not None:
        export = args.export
    else:
        export = quantized_export(work) if args.quantize else prepare_export(work)
    if args.out is None:
        name = "serve_load_int8.json" if args.quantize else "serve_load.json"
        args.out = ROOT / "benchmarks" / "results" / name
    if args.quantize:
        args.server_args = f"{args.server_args} --quantize {args.quantize}".strip()
    sizes = [int(x) for x in args.sizes.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    if not set(sizes) <= set(SIZES) or min(levels) < 1 or max(levels) > 256:
        sys.exit(f"--sizes: some of {SIZES}; --concurrency: 1 to 256")
    rows = frappe_rows(max(SIZES))
    request_bodies = bodies(rows)
    load_before = os.getloadavg()
    cells = []
    modes = [b == "on" for b in args.batching.split(",")]
    # both servers up at once and the modes measured in turn, cell by cell, so that a change
    # in the machine's other load falls on both alike
    servers = {}
    try:
        for batching in modes:
            servers[batching] = Server(export, args.server_args.split() + ([] if batching else ["--no-batching"]))  # fmt: skip
        for size in sizes:
            for concurrency in levels:
                for batching in modes:
                    times, elapsed, rejected = asyncio.run(
                        _cell(
                            servers[batching].port,
                            request_bodies[size],
                            concurrency,
                            args.seconds,
                            args.max_requests,
                        )  # fmt: skip
                    )
                    cell = {"batching": batching, "size": size, "concurrency": concurrency, **summarize(times, size, elapsed), "rejected_503": rejected}  # fmt: skip
                    cells.append(cell)
                    print(json.dumps(cell), flush=True)
    finally:
        codes = [server.stop() for server in servers.values()]
    if any(codes):
        sys.exit(f"a server exited {codes} after SIGTERM, not 0")
    floors = floor(
        export, rows, min(args.seconds, 2.0), sizes, f" ({args.quantize})" if args.quantize else ""
    )
    if args.quantize and args.export is None:  # the float graph of the same run, same process
        floors |= floor(prepare_export(work), rows, min(args.seconds, 2.0), sizes, " (float32)")
    load_after = os.getloadavg()
    full = sizes == list(SIZES) and levels == list(CONCURRENCY) and args.batching == "on,off"
    if not full:  # a partial grid is for exploring: printed, not written over the results
        partial = {"cells": cells, "floor_in_process": floors, "targets": {}, "reached": {}}
        partial |= {
            "conditions": CONDITIONS[args.conditions],
            "load_average_1_5_15_before": load_before,
        }
        print(render(partial))
        return 0
    reached = {
        "1 row p99 at concurrency 1 (ms)": min(
            c["p99_ms"] for c in cells if c["size"] == 1 and c["concurrency"] == 1
        ),  # fmt: skip
        "700 candidates p99 at concurrency 8 (ms)": min(
            c["p99_ms"] for c in cells if c["size"] == 700 and c["concurrency"] == 8
        ),  # fmt: skip
        "peak rows/s": max(c["rows_per_s"] for c in cells),
    }
    import onnxruntime

    result = {
        "conditions": CONDITIONS[args.conditions],
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in load_after],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "platform": platform.platform(),
        },  # fmt: skip
        "model": "TF4CTR at the paper's Frappe sizes (configs/frappe_x1/tf4ctr.yaml), one epoch "
        "on Frappe_x1 (rebuilt train); rows from Frappe_x1's test split"
        + (f"; exported with {args.quantize} weights" if args.quantize else "")
        if args.export is None
        else f"the export {args.export.name}",
        "weights": args.quantize or "float32",
        "settings": {
            "seconds_per_cell": args.seconds,
            "max_requests_per_cell": args.max_requests,
            "server_args": args.server_args,
            "client": "one asyncio process, keep-alive, closed loop",
        },  # fmt: skip
        "cells": cells,
        "floor_in_process": floors,
        "targets": TARGETS,
        "reached": reached,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    return 0


def render(result: dict[str, Any]) -> str:
    lines = [f"tf4ctr serve load ({result['conditions']}; load average before "
             f"{result['load_average_1_5_15_before']})", "",
             "| batching | rows/request | concurrency | p50 ms | p99 ms | p99.9 ms | rows/s | 503s |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in result["cells"]:
        lines.append(f"| {'on' if c['batching'] else 'off'} | {c['size']} | {c['concurrency']} | "
                     f"{c['p50_ms']} | {c['p99_ms']} | {c['p999_ms']} | {c['rows_per_s']:,} | {c['rejected_503']} |")  # fmt: skip
    lines += ["", "| in-process floor | rows | p50 ms | p99 ms | rows/s |", "|---|---|---|---|---|"]
    for name, c in result["floor_in_process"].items():
        lines.append(f"| {name.rsplit(' size', 1)[0]} | {c['size']} | {c['p50_ms']} | {c['p99_ms']} | {c['rows_per_s']:,} |")  # fmt: skip
    lines += ["", "| target | wanted | reached |", "|---|---|---|"]
    for key, wanted in result["targets"].items():
        lines.append(f"| {key} | {wanted:,} | {result['reached'][key]:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    assert MARKER  # the work folder is removed only when marked as this benchmark's
    sys.exit(main())
