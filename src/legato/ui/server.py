"""Running the UI on uvicorn: in a background thread of the user's process (:func:`start`, so
the runs of that process show live), or in the foreground (:func:`serve`, what ``legato ui``
calls, until Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legato.engine import Engine
from legato.errors import RunError
from legato.ui.readonly import ReadOnlyStore

DEFAULT_PORT = 8265


@dataclass
class UIHandle:
    """A UI server running in a background thread: ``url`` to open, :meth:`stop` to end it."""

    url: str
    app: Any = field(repr=False)
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (open event streams end first) and stop following the engines."""
        self.app.state.hub.close()
        self._server.should_exit = True
        self._thread.join(timeout)
        self.app.state.store.close()

    def __enter__(self) -> UIHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _server(api: Any, host: str, port: int) -> Any:
    import uvicorn

    return uvicorn.Server(uvicorn.Config(api, host=host, port=port, lifespan="off",
                                         access_log=False, log_level="warning",
                                         timeout_graceful_shutdown=2))


def in_thread(server: Any, name: str, timeout: float) -> threading.Thread | None:
    """Run a uvicorn ``server`` on a thread of its own; the thread once the server listens,
    or None (the server stopped again) when it did not start within ``timeout`` seconds.
    ``legato serve``'s :func:`~legato.serve.running` uses it too."""
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    ready = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if server.started or not thread.is_alive():
            break
        ready.wait(0.01)
    if server.started:
        return thread
    server.should_exit = True
    thread.join(timeout)
    return None


def address(server: Any, host: str) -> str:
    """``host:port`` a started uvicorn server listens on (the port it got, for port 0)."""
    for listener in getattr(server, "servers", ()):
        for sock in listener.sockets:
            port = sock.getsockname()[1]
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def start(store: ReadOnlyStore | str | Path | None = None, *, host: str = "127.0.0.1",
          port: int = DEFAULT_PORT, engine: Engine | None = None,
          timeout: float = 30.0, **options: Any) -> UIHandle:
    """Serve the UI from a background thread of this process; returns once it listens.

    ``store``: the run store to show (None: ``LEGATO_STORE``, else ``.legato/legato.db``;
    opened read-only when first needed, so it may not exist yet). The runs of this process's
    default engine (and of ``engine``) show live. ``port=0``: any free port (``handle.url``
    says which). ``options``: more :func:`legato.ui.app` arguments."""
    from legato.ui.app import app

    api = app(store, engine=engine, **options)
    server = _server(api, host, port)
    thread = in_thread(server, "legato-ui", timeout)
    if thread is None:
        api.state.hub.close()
        raise RunError(f"the UI did not start on {host}:{port} (is the port in use?)")
    return UIHandle(f"http://{address(server, host)}", api, server, thread)


def serve(store: ReadOnlyStore, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          announce: Any = print) -> None:
    """Serve the UI in the foreground until Ctrl-C or SIGTERM (uvicorn's own handling)."""
    from legato.ui.app import app

    api = app(store)
    server = _server(api, host, port)
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        if server.started:
            announce(f"legato ui: {store.where} at http://{address(server, host)}")

    server.startup = startup
    try:
        server.run()
    finally:
        api.state.hub.close()
    if not server.started:
        raise RunError(f"the UI did not start on {host}:{port} (is the port in use?)")


__all__ = ["DEFAULT_PORT", "UIHandle", "address", "in_thread", "serve", "start"]
