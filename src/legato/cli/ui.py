"""``legato ui``: the web UI over a run store (``pip install 'legato[ui]'``).

Thin over :func:`legato.ui.server.serve`: the store is opened read-only first, so a URL that
does not exist, or a database that is not a legato store, stops the command with one line and
exit code 2 before anything listens. The UI has no authentication of its own: it binds to
loopback unless ``--host`` says otherwise (``legato serve`` mounts it at ``/ui`` behind the
service's API keys).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from legato.cli.common import StoreUrl, UsageError, reporting
from legato.errors import StoreError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ui(
    ctx: typer.Context,
    store: StoreUrl = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8265,
) -> None:
    """Serve the web UI over a run store (read-only): runs, graphs, timelines, dashboards."""
    with reporting(ctx):
        try:
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as exc:
            raise UsageError(f"legato ui needs the ui extra: pip install 'legato[ui]' "
                             f"({exc.name} is missing)") from None
        from legato.ui.readonly import ReadOnlyStore
        from legato.ui.server import serve

        try:
            opened = ReadOnlyStore(store)
        except StoreError as exc:
            raise UsageError(" ".join(str(exc).split())) from None
        if host not in LOOPBACK:
            _say(f"legato ui: WARNING: the UI has no authentication; anyone who can reach "
                 f"{host} can read the runs of {opened.where}")
        try:
            serve(opened, host=host, port=port, announce=_say)
        finally:
            opened.close()


__all__ = ["ui"]
