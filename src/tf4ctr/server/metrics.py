"""The server's Prometheus metrics, with prometheus_client on a registry of the app's own.

A registry per app (not the library's global one) so that two apps in one process, as in
tests, never clash over a metric name. Each worker process of ``--workers N`` reports its own
numbers; a scrape through the shared port reaches one worker, so a dashboard sums over
workers the way it sums over replicas (the ``worker`` label is the process id).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

#: seconds: fine below 10 ms, where a CTR service's budget lies
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
                   0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)  # fmt: skip
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        worker = str(os.getpid())
        r = self.registry
        self.requests = Counter(
            "tf4ctr_requests", "HTTP requests answered, by route and status", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "tf4ctr_errors", "requests refused or failed, by kind of error", ["kind"], registry=r
        )
        self.latency = Histogram(
            "tf4ctr_request_seconds", "time from request read to response, by route", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rows = Counter("tf4ctr_rows_scored", "rows scored", registry=r)
        self.batch_rows = Histogram(
            "tf4ctr_batch_rows", "rows per ONNX Runtime call (after dynamic batching)",
            buckets=ROW_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_requests = Histogram(
            "tf4ctr_batch_requests", "requests merged into one ONNX Runtime call",
            buckets=ROW_BUCKETS[:9], registry=r,
        )  # fmt: skip
        self.queued_rows = Gauge(
            "tf4ctr_queued_rows", "rows accepted and not yet answered (the bounded queue)",
            registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "tf4ctr_requests_in_flight",
            "predict requests begun (body being read, queued or scored) and not answered",
            registry=r,
        )
        self.reloads = Counter(
            "tf4ctr_model_reloads", "model reloads, by outcome", ["outcome"], registry=r
        )
        self.model = Info("tf4ctr_model", "the model being served", registry=r)
        self.worker = worker

    def set_model(self, name: str, version: str) -> None:
        self.model.info({"name": name, "version": version, "worker": self.worker})

    def render(self) -> bytes:
        return generate_latest(self.registry)
