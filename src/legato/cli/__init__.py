"""The ``legato`` command line: run, map, check and draw a pipeline named by ``FILE:PIPELINE``;
list, show, time and resume the runs the store recorded.

Thin over the public API: each command loads a pipeline (:mod:`legato.loader`) and calls what a
Python user would call (``run``, ``map``, ``check``, ``to_mermaid``), or reads the run store
(:class:`legato.store.Store`). The Typer app is built in :mod:`~legato.cli.commands`, which
registers the commands by theme, in the order ``legato --help`` lists them:
:mod:`~legato.cli.running` (run, map, resume), :mod:`~legato.cli.streaming` (stream,
replay), :mod:`~legato.cli.drawing` (check, graph),
:mod:`~legato.cli.serving` (serve), :mod:`~legato.cli.records` (runs, show),
:mod:`~legato.cli.housekeeping` (runs rm, gc), :mod:`~legato.cli.timeline`,
:mod:`~legato.cli.cache`, :mod:`~legato.cli.ui` (the web UI); :mod:`~legato.cli.common`
holds the options and the error reporting they share.

This module stays light: ``legato --version`` answers without importing Typer or Rich (the
app and every name below are imported on first use).

Exit codes: 0 done; 1 a failure (a problem the check found, an input that does not fit, a failed
item, a file that fails to import, an unknown run); 2 a usage error (bad arguments, nothing at
FILE:PIPELINE); 130 cancelled by Ctrl-C, after in-flight calls were cancelled and worker
processes stopped. Errors print one ``error:`` message on stderr; ``legato --debug ...`` adds
the traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.cli.commands import app
    from legato.cli.common import UsageError, error
    from legato.cli.jsonout import dumps, jsonable
    from legato.cli.options import parse_inputs

__all__ = ["UsageError", "app", "dumps", "error", "jsonable", "main", "parse_inputs"]

# Where each lazily imported name lives.
_LAZY = {"app": "legato.cli.commands", "UsageError": "legato.cli.common",
         "error": "legato.cli.common", "dumps": "legato.cli.jsonout",
         "jsonable": "legato.cli.jsonout", "parse_inputs": "legato.cli.options"}


def main() -> None:
    """The ``legato`` console script."""
    if sys.argv[1:] == ["--version"]:  # the one answer that needs no Typer app
        from legato import __version__

        print(f"legato {__version__}")
        return
    from legato.cli.commands import app

    app()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'legato.cli' has no attribute {name!r}")
