"""The web UI: runs, a run's graph and timeline, failures, service and stream dashboards.

- :func:`app` (``app.py``): the FastAPI app over a store, opened read-only
  (:class:`ReadOnlyStore`, ``readonly.py``: the UI never writes to the store), with the JSON
  API the front end reads (``queries.py``, ``timeline.py``, ``failures.py``,
  ``dashboards.py``) and server-sent events of the runs live in this process (:class:`Hub`,
  ``live.py``). ``legato serve`` mounts it at ``/ui``.
- :func:`start` (``server.py``): the UI in a background thread of your process (its runs show
  live), ``handle.url`` to open and ``handle.stop()``; ``legato ui`` serves it in the
  foreground.

The front end (TypeScript, built into ``static/``) ships with the package. This package needs
FastAPI (``pip install 'legato[ui]'``); ``import legato`` does not import it.
"""

from __future__ import annotations

# the function, not its module: ``legato.ui.app`` is the function whatever was imported first
from legato.ui.app import app
from legato.ui.live import Hub
from legato.ui.readonly import ReadOnlyStore
from legato.ui.server import UIHandle, start

__all__ = ["Hub", "ReadOnlyStore", "UIHandle", "app", "start"]
