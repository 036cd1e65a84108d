"""Fixtures for ``tf4ctr serve``: one tiny trained run per session, real server processes.

The run is trained, scored with ``tf4ctr predict`` and exported once (``trained``); each test
module starts its own server process on 127.0.0.1 through :func:`start_server`, and every
wait is bounded so a broken server fails a test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("prometheus_client")

from tests.conftest import DATASET_YAML, RUN_YAML, write_csv  # noqa: E402
from tf4ctr.rundir import PREPROCESSOR_FILE  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Trained:
    project: Path
    run_dir: Path
    onnx: Path  # the run's export
    other_onnx: Path  # the same schema, other weights: a "new model" to reload
    rows: list[dict[str, str]]  # test.csv's rows, raw text as in the CSV
    expected: np.ndarray  # tf4ctr predict's probabilities for them


def _export_perturbed(run_dir: Path, output: Path) -> None:
    import torch

    from tf4ctr import run
    from tf4ctr.export import export_model

    loaded = run.load_run(run_dir)
    model = loaded.model.eval()
    torch.manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    schema = loaded.preprocessor.schema
    export_model(model, sum(schema.widths), len(schema.numeric), "onnx", output)
    shutil.copyfile(
        run_dir / PREPROCESSOR_FILE, output.with_name(output.name + ".preprocessor.json")
    )


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from tf4ctr.cli import main

    project = tmp_path_factory.mktemp("serve-project")
    write_csv(project / "train.csv", 2000, 0)
    write_csv(project / "valid.csv", 500, 1)
    write_csv(project / "test.csv", 600, 2)
    (project / "dataset.yaml").write_text(DATASET_YAML)
    (project / "run.yaml").write_text(RUN_YAML)
    cwd = Path.cwd()
    os.chdir(project)
    try:
        assert main(["train", "--config", "run.yaml", "train.epochs=1", "--no-progress"]) == 0
        run_dir = project / "runs" / "tiny-run"
        assert (run_dir / "preprocessor.json").is_file()
        args = ["predict", str(run_dir), "--input", "test.csv", "--output", "s.csv"]
        assert main([*args, "--no-progress"]) == 0
        assert main(["export", str(run_dir), "--format", "onnx", "--output", "m.onnx"]) == 0
    finally:
        os.chdir(cwd)
    _export_perturbed(run_dir, project / "other.onnx")
    scores = (project / "s.csv").read_text().splitlines()
    expected = np.array([float(r["probability"]) for r in csv.DictReader(scores)])
    rows = list(csv.DictReader((project / "test.csv").read_text().splitlines()))
    return Trained(project, run_dir, project / "m.onnx", project / "other.onnx", rows, expected)


def copy_export(src: Path, dst: Path) -> Path:
    """An export's two files under another name (the sidecar follows the model's name)."""
    shutil.copyfile(src, dst)
    shutil.copyfile(
        src.with_name(src.name + ".preprocessor.json"),
        dst.with_name(dst.name + ".preprocessor.json"),
    )
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A ``tf4ctr serve`` process on 127.0.0.1, with bounded waits and JSON helpers."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        }
        cmd = [
            sys.executable,
            "-m",
            "tf4ctr",
            "serve",
            *args,
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited {self.proc.returncode}:\n{self.log_text()}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/readyz", timeout=2)[0] == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"server not ready in {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:  # fmt: skip
        """(status, headers, JSON body or text); ``body`` bytes go as they are, else as JSON."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
            kind = response.getheader("content-type", "")
            parsed = json.loads(raw) if kind.startswith("application/json") else raw.decode()
            return response.status, dict(response.getheaders()), parsed
        finally:
            conn.close()

    def predict(self, body: Any) -> Any:
        status, _, answer = self.request("POST", "/v1/predict", body)
        assert status == 200, answer
        return answer

    def scrape(self) -> str:
        """One /metrics page (with ``--workers N``, one worker's: read it once per check)."""
        return self.request("GET", "/metrics")[2]

    def metric(self, metric: str, page: str | None = None, **labels: str) -> float:
        """A metric's value (summed over matching samples) on ``page`` or a fresh scrape."""
        from prometheus_client.parser import text_string_to_metric_families

        total, found = 0.0, False
        for family in text_string_to_metric_families(page or self.scrape()):
            for sample in family.samples:
                if sample.name == metric and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total, found = total + sample.value, True
        return total if found else float("nan")

    def wait_metric(
        self, metric: str, at_least: float, timeout: float = 20.0, **labels: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metric(metric, **labels) >= at_least:
                return
            time.sleep(0.02)
        pytest.fail(f"{metric}{labels} never reached {at_least}:\n{self.log_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_file.close()
        return self.proc.returncode


@contextlib.contextmanager
def start_server(args: list[str], log: Path) -> Iterator[Server]:
    server = Server(args, log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class HeldRequest:
    """A POST whose body is sent in two parts: in flight, on purpose, between them.

    A slow client is the everyday request in flight; holding the body open makes the moment
    exact, with no sleep guessing how long scoring takes.
    """

    def __init__(self, port: int, body: Any, path: str = "/v1/predict") -> None:
        self.data = json.dumps(body).encode()
        self.half = len(self.data) // 2
        self.sock = socket.create_connection((HOST, port), timeout=30)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.data)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + self.data[: self.half])

    def finish(self) -> tuple[int, Any]:
        self.sock.sendall(self.data[self.half :])
        response = http.client.HTTPResponse(self.sock)
        try:
            response.begin()
            return response.status, json.loads(response.read())
        finally:
            response.close()
            self.sock.close()


def rows_as_sent(rows: list[dict[str, str]], n: int | None = None) -> list[dict[str, str]]:
    """CSV rows as a client sends them: every feature, text values (label dropped)."""
    return [{k: v for k, v in r.items() if k != "label"} for r in rows[:n]]
