"""Running the app on uvicorn: :func:`serve` (what ``legato serve`` and ``pipeline.serve()``
call) and :func:`running` (a server in a background thread, for tests and benchmarks).

:func:`serve` runs uvicorn in a thread and keeps the signals to itself, on the main thread:

- SIGTERM or Ctrl-C: drain. ``/readyz`` turns 503 and new requests get 503 at once; in-flight
  requests finish (up to ``drain_timeout``); then uvicorn stops, the runs are closed (what is
  left cancelled) and recorded as finished, and ``serve`` returns (the command exits 0). A
  second signal stops without waiting further.
- SIGHUP: the API key file is read again.

With no API key configured the server binds to loopback only (``host`` is replaced by
127.0.0.1, and a message says so) unless ``insecure``.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn

from legato.engine import Engine
from legato.errors import ConfigError, RunError
from legato.pipeline import Pipeline
from legato.serve.app import app
from legato.serve.auth import Keys
from legato.serve.config import LOOPBACK, ServeOptions
from legato.ui.server import address, in_thread


def say(message: str) -> None:
    print(f"legato serve: {message}", file=sys.stderr, flush=True)


def bind_host(options: ServeOptions, keys: Keys, *, tell: Callable[[str], None] = say) -> str:
    """The host to bind: loopback when no key is configured, unless ``insecure``."""
    if keys.required:
        return options.host
    if options.host in LOOPBACK:
        tell(f"no API key configured: requests need none; listening on {options.host} only")
        return options.host
    if options.insecure:
        tell(f"WARNING: no API key configured and --insecure: anyone who can reach "
             f"{options.host} can call the pipelines")
        return options.host
    tell(f"no API key configured: binding to 127.0.0.1, not {options.host} (give "
         "--api-key-file or LEGATO_API_KEYS, or --insecure to serve without keys)")
    return "127.0.0.1"


def serve(*pipelines: Pipeline, engine: Engine | None = None, **options: Any) -> None:
    """Serve ``pipelines`` until SIGTERM or Ctrl-C (see the module docstring). ``options``:
    :class:`~legato.serve.config.ServeOptions` fields."""
    settings = ServeOptions(**options)
    keys = Keys(settings.api_keys, file=settings.api_key_file)
    host = bind_host(settings, keys)
    for pipeline in pipelines:  # a graph that cannot run fails here, before listening
        pipeline.check(engine=engine, resources=settings.resources or None)
    api = app(*pipelines, engine=engine, keys=keys,
              **settings.model_dump(exclude={"host", "port"}))
    service = api.state.service
    server = uvicorn.Server(uvicorn.Config(
        api, host=host, port=settings.port, lifespan="on", access_log=False,
        log_level="debug" if settings.debug else "warning",
        timeout_graceful_shutdown=int(settings.drain_timeout) + 5))
    thread = threading.Thread(target=server.run, name="legato-serve", daemon=True)
    stop = threading.Event()
    signals = 0

    def on_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            say("second signal: cancelling what is in flight")
            service.abort()
        stop.set()

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        try:
            say(f"SIGHUP: API keys reloaded ({keys.reload()} accepted)")
        except ConfigError as exc:
            say(f"SIGHUP: {exc}; the keys stay as they were")

    main = threading.current_thread() is threading.main_thread()
    previous: dict[signal.Signals, Any] = {}
    if main:
        for sig, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop),
                             (signal.SIGHUP, on_hangup)):
            previous[sig] = signal.signal(sig, handler)
    try:
        thread.start()
        announced = False
        while thread.is_alive() and not stop.is_set():
            stop.wait(0.2)
            if not announced and server.started:
                announced = True
                say(f"serving {', '.join(p.name for p in pipelines)} at "
                    f"http://{address(server, host)} (POST /v1/pipelines/NAME; docs at /docs)")
        if stop.is_set():
            say(f"stopping: draining {service.in_flight} in-flight requests "
                f"(up to {settings.drain_timeout}s)")
            if not service.drain():
                say("drain timeout: cancelling what is left")
            server.should_exit = True
        thread.join()
        if service.error is not None:
            raise service.error
        if not server.started:
            raise RunError(f"the server did not start on {host}:{settings.port} "
                           "(is the port in use?)")
        say("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def running(api: Any, *, host: str = "127.0.0.1", port: int = 0,
            timeout: float = 30.0) -> Iterator[str]:
    """Run an ASGI app on uvicorn in a background thread; yields its base URL
    (``http://127.0.0.1:PORT``) once it listens, and stops it (lifespan shutdown included)
    on exit. ``port=0``: a free port."""
    server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, lifespan="on",
                                           access_log=False, log_level="warning"))
    thread = in_thread(server, "legato-serve", timeout)
    if thread is None:
        raise RunError(f"the server did not start on {host}:{port} within {timeout}s")
    try:
        yield f"http://{address(server, host)}"
    finally:
        server.should_exit = True
        thread.join(timeout)


__all__ = ["bind_host", "running", "serve"]
