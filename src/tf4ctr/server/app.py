"""The HTTP API over Starlette: routes, error answers, and the model's lifecycle.

Starlette rather than FastAPI: the request schema is known only when a model is loaded (its
fields are the run's), and FastAPI's per-row validation models would cost more than the
scoring itself on a 700-candidate request, with its own error format instead of ours (field
plus instance index). Starlette is the routing core FastAPI is built on, without that layer.

Every answer is JSON, errors included (``{"error": {"kind", "message", "field",
"instance"}}``); nothing a client sends yields a traceback or a 500, which the fuzz test checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from tf4ctr.errors import UserError, first_message_line
from tf4ctr.server.batching import Batcher, BatchSettings, Overloaded
from tf4ctr.server.metrics import CONTENT_TYPE_LATEST, ServerMetrics
from tf4ctr.server.model import ModelSlot, ServedModel
from tf4ctr.server.requests import Limits, RequestError, parse_body

__all__ = ["ServeSettings", "app_from_env", "create_app"]

log = logging.getLogger("tf4ctr.server")

SETTINGS_ENV = "TF4CTR_SERVE_SETTINGS"  # how ``--workers N`` hands settings to its workers
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class ServeSettings:
    source: str
    threads: int = 1  # ONNX Runtime intra-op threads per worker; 0 = its own choice
    batch: BatchSettings = field(default_factory=BatchSettings)
    limits: Limits = field(default_factory=Limits)
    drain_timeout: float = 30.0
    quantize: str | None = None  # int8: a run directory is exported with int8 weights

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        raw = json.loads(text)
        return cls(
            source=raw["source"],
            threads=raw["threads"],
            batch=BatchSettings(**raw["batch"]),
            limits=Limits(**raw["limits"]),
            drain_timeout=raw["drain_timeout"],
            quantize=raw.get("quantize"),
        )


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _model_info(model: ServedModel | None) -> dict[str, str] | None:
    return None if model is None else {"name": model.name, "version": model.version}


class _Server:
    """The app's state: the model slot, the batcher, the metrics, the settings."""

    def __init__(self, settings: ServeSettings, model: ServedModel | None) -> None:
        self.settings = settings
        self.metrics = ServerMetrics()
        self.slot = ModelSlot(settings.source, settings.threads, settings.quantize)
        self.slot.current = model
        if model is not None:
            self.metrics.set_model(model.name, model.version)
        self.batcher: Batcher | None = None

    async def predict(self, request: Request) -> Response:
        start = time.perf_counter()
        model = self.slot.current  # taken once: this request finishes on this model
        batcher = self.batcher
        assert batcher is not None
        batcher.incoming += 1
        self.metrics.in_flight.inc()
        counted = True
        status = 200
        try:
            if model is None:
                raise RequestError(503, "not_ready", "no model loaded yet")
            raw = await _read_body(request, self.settings.limits)
            rows, _form = parse_body(raw, model.schema, self.settings.limits)
            categorical, numeric = _encode(model, rows)
            batcher.incoming -= 1
            counted = False
            scores = await batcher.score(model, categorical, numeric)
            self.metrics.rows.inc(len(scores))
            return _json({"predictions": scores.tolist(), "model": _model_info(model)})
        except RequestError as exc:
            status = exc.status
            self.metrics.errors.labels(exc.kind).inc()
            return _json(exc.body(), exc.status)
        except Overloaded as exc:
            status = 503
            self.metrics.errors.labels("overloaded").inc()
            body = RequestError(503, "overloaded", str(exc)).body()
            return _json(body, 503, {"Retry-After": str(exc.retry_after)})
        except ClientDisconnect:  # the client left mid-body: nobody to answer, nothing wrong here
            status = 499
            self.metrics.errors.labels("client_disconnected").inc()
            return _json(RequestError(499, "client_disconnected", "client disconnected").body(), 499)  # fmt: skip
        except Exception:
            status = 500
            log.exception("tf4ctr serve: scoring failed")
            self.metrics.errors.labels("internal").inc()
            return _json(RequestError(500, "internal", "scoring failed; see the log").body(), 500)
        finally:
            if counted:
                batcher.incoming -= 1
            self.metrics.in_flight.dec()
            self.metrics.requests.labels("/v1/predict", str(status)).inc()
            self.metrics.latency.labels("/v1/predict").observe(time.perf_counter() - start)

    async def model(self, request: Request) -> Response:
        model = self.slot.current
        if model is None:
            return _json(RequestError(503, "not_ready", "no model loaded yet").body(), 503)
        info = {**_model_info(model), "weights": model.weights}  # type: ignore[dict-item]
        return _json({**info, "fields": list(model.schema.fields)})

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        model = self.slot.current
        if model is None:
            return _json({"status": "loading", "model": None}, 503)
        return _json({"status": "ready", "model": _model_info(model)})

    async def metrics_page(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def admin_reload(self, request: Request) -> Response:
        """Load a new export (or the same source again) and swap it in; loopback clients only."""
        if request.client is None or request.client.host not in _LOOPBACK:
            return _json(RequestError(403, "forbidden", "admin endpoints answer localhost only").body(), 403)  # fmt: skip
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
            path = body.get("path") if isinstance(body, dict) else None
            if not (path is None or isinstance(path, str)) or not isinstance(body, dict):
                raise ValueError('expected {} or {"path": "..."}')
        except ValueError as exc:
            error = RequestError(400, "malformed_json", first_message_line(str(exc)), "path")
            return _json(error.body(), 400)
        return await self.reload(path)

    async def reload(self, path: str | None = None) -> Response:
        previous = self.slot.current
        try:
            model = await asyncio.to_thread(self.slot.reload, path)
        except UserError as exc:
            self.metrics.reloads.labels("failed").inc()
            log.warning(
                "tf4ctr serve: reload failed, still serving %s: %s", _model_info(previous), exc
            )
            body = RequestError(409, "reload_failed", str(exc), "path").body()
            return _json({**body, "model": _model_info(previous)}, 409)
        self.metrics.reloads.labels("ok").inc()
        self.metrics.set_model(model.name, model.version)
        log.info(
            "tf4ctr serve: now serving %s %s (from %s)", model.name, model.version, model.source
        )
        return _json({"model": _model_info(model), "previous": _model_info(previous)})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.batcher = Batcher(self.settings.batch, self.metrics)
        self.batcher.start()
        if self.slot.current is None:  # a worker of --workers N loads its own copy
            response = await self.reload()
            if response.status_code != 200:
                raise RuntimeError(f"tf4ctr serve: could not load {self.settings.source}")
        loop = asyncio.get_running_loop()
        hup = _on_sighup(loop, lambda: loop.create_task(self.reload()))
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            await self.batcher.stop(self.settings.drain_timeout)


def _on_sighup(loop: asyncio.AbstractEventLoop, callback: Any) -> bool:
    if not hasattr(signal, "SIGHUP"):
        return False
    try:
        loop.add_signal_handler(signal.SIGHUP, callback)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
        return False
    return True


async def _read_body(request: Request, limits: Limits) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(
                400, "bad_header", "Content-Length is not a number", "Content-Length"
            )
        if int(declared) > limits.max_body_bytes:
            raise RequestError(413, "body_too_large", f"body of {declared} bytes is over the limit of {limits.max_body_bytes}")  # fmt: skip
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:  # a chunked body has no Content-Length to check
            raise RequestError(413, "body_too_large", f"body is over the limit of {limits.max_body_bytes} bytes")  # fmt: skip
        chunks.append(chunk)
    return b"".join(chunks)


def _encode(model: ServedModel, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    try:
        return model.encoder.encode(rows)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:  # validated rows: rare
        raise RequestError(422, "unencodable", f"rows could not be encoded: {first_message_line(str(exc))}"[:300]) from None  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    kind = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return _json(RequestError(status, kind, str(detail)).body(), status)


def create_app(settings: ServeSettings, model: ServedModel | None = None) -> Starlette:
    """The ASGI app; ``model`` already loaded (one worker), or loaded at startup (``None``)."""
    server = _Server(settings, model)
    routes = [
        Route("/v1/predict", server.predict, methods=["POST"]),
        Route("/v1/model", server.model, methods=["GET"]),
        Route("/healthz", server.healthz, methods=["GET"]),
        Route("/readyz", server.readyz, methods=["GET"]),
        Route("/metrics", server.metrics_page, methods=["GET"]),
        Route("/admin/reload", server.admin_reload, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=server.lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
    )
    app.state.server = server
    return app


def app_from_env() -> Starlette:
    """The app of one worker of ``--workers N`` (uvicorn imports it by name in each process)."""
    tf4ctr_log = logging.getLogger("tf4ctr")
    if not tf4ctr_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        tf4ctr_log.addHandler(handler)
        tf4ctr_log.setLevel(logging.INFO)
    return create_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))
