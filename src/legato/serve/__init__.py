"""Serving pipelines over HTTP (``pip install legato[serve]``): FastAPI on uvicorn.

- :func:`app` ``(*pipelines, **options)``: an ASGI app to run or mount;
- :func:`serve` ``(*pipelines, host=, port=, **options)``: run it until SIGTERM (drained);
  ``pipeline.serve()`` and ``legato serve FILE:PIPELINE`` call it;
- :func:`running`: the app on a background thread (tests, benchmarks);
- :class:`ServeOptions`, :func:`load_config`: the options, and a ``legato.yaml`` file of them.

Each pipeline gets ``POST /v1/pipelines/{name}``: requests are items of one long-lived run per
pipeline, so concurrent requests share warm models and batches. ``legato.serve`` is imported
only by those who serve: ``import legato`` never imports FastAPI or uvicorn.
"""

from __future__ import annotations

from legato.serve.app import app
from legato.serve.auth import Keys
from legato.serve.config import ServeConfig, ServeOptions, load_config
from legato.serve.lifecycle import Service
from legato.serve.server import running, serve

__all__ = ["Keys", "ServeConfig", "ServeOptions", "Service", "app", "load_config", "running",
           "serve"]
