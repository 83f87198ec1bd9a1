"""The web UI: runs, a run's graph and timeline, failures, service and stream dashboards.

- :func:`app` (``app.py``): the FastAPI app over a store, opened read-only
  (:class:`ReadOnlyStore`, ``readonly.py``: the UI never writes to the store), with the JSON
  API the front end reads (``queries.py``, ``timeline.py``, ``failures.py``,
  ``dashboards.py``) and server-sent events of the runs live in this process (:class:`Hub`,
  ``live.py``). ``legato serve`` mounts it at ``/ui``.
- :func:`start` (``server.py``): the UI in a background thread of your process (its runs show
  live), ``handle.url`` to open and ``handle.stop()``; ``legato ui`` serves it in the
  foreground.

The front end (TypeScript, built into ``static/``) ships with the package. FastAPI and uvicorn
are imported only by :func:`app` and :func:`start` (``pip install 'legato[ui]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.ui.app import app
    from legato.ui.live import Hub
    from legato.ui.readonly import ReadOnlyStore
    from legato.ui.server import UIHandle, start

__all__ = ["Hub", "ReadOnlyStore", "UIHandle", "app", "start"]

_LAZY = {"app": "legato.ui.app", "Hub": "legato.ui.live", "ReadOnlyStore": "legato.ui.readonly",
         "UIHandle": "legato.ui.server", "start": "legato.ui.server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'legato.ui' has no attribute {name!r}")
