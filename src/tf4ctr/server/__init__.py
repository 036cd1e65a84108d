"""``tf4ctr serve``: an HTTP scoring service over an ONNX export and its RowEncoder.

Laid out by job, each file small enough to read at once:

- ``requests``: a request body -> validated rows, or a 4xx error that names the field and the
  instance (no web framework in it, so it is unit-tested without a server);
- ``model``: what is being served (ONNX Runtime session + RowEncoder + name/version), loading
  it from a run directory or an export, and the slot that swaps models atomically;
- ``batching``: dynamic batching of concurrent requests over one bounded queue;
- ``metrics``: the Prometheus metrics (prometheus_client, one registry per app);
- ``app``: the Starlette routes and the lifespan (SIGHUP reload, drain);
- ``serve_cli``: the ``tf4ctr serve`` command, over uvicorn;
- ``offline``: the same scoring inside Ray Data's ``map_batches`` for large tables.

Nothing here imports starlette, uvicorn or onnxruntime at module top except ``app``,
``metrics`` and ``model``, so ``tf4ctr --help`` works without the ``serve`` extra.
"""
