"""The ``legato`` command line: run, map, check and draw a pipeline named by ``FILE:PIPELINE``;
list, show, time and resume the runs the store recorded.

Thin over the public API: each command loads a pipeline (:mod:`legato.loader`) and calls what a
Python user would call (``run``, ``map``, ``check``, ``to_mermaid``), or reads the run store
(:class:`legato.store.Store`). The commands live by theme and are registered below, in the
order ``legato --help`` lists them: :mod:`~legato.cli.running` (run, map, resume),
:mod:`~legato.cli.drawing` (check, graph), :mod:`~legato.cli.serving` (serve),
:mod:`~legato.cli.records` (runs, show),
:mod:`~legato.cli.timeline`, :mod:`~legato.cli.cache`; :mod:`~legato.cli.common` holds the
options and the error reporting they share.

Exit codes: 0 done; 1 a failure (a problem the check found, an input that does not fit, a failed
item, a file that fails to import, an unknown run); 2 a usage error (bad arguments, nothing at
FILE:PIPELINE); 130 cancelled by Ctrl-C, after in-flight calls were cancelled and worker
processes stopped. Errors print one ``error:`` message on stderr; ``legato --debug ...`` adds
the traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from legato import __version__
from legato.cli import cache, drawing, housekeeping, records, running, serving, timeline
from legato.cli.common import Settings, UsageError, error
from legato.cli.jsonout import dumps, jsonable
from legato.cli.options import parse_inputs

__all__ = ["UsageError", "app", "dumps", "error", "jsonable", "main", "parse_inputs"]

app = typer.Typer(
    name="legato",
    help="Run, map, check and draw legato pipelines; list, show, time and resume recorded "
    "runs. A pipeline is named FILE:PIPELINE (path/to/file.py:agent) or "
    "package.module:PIPELINE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PIPELINES = "Pipelines"
RECORDS = "Recorded runs"
app.command(rich_help_panel=PIPELINES)(running.run)
app.command("map", rich_help_panel=PIPELINES)(running.map_)
app.command(rich_help_panel=PIPELINES)(drawing.check)
app.command(rich_help_panel=PIPELINES)(drawing.graph)
app.command(rich_help_panel=PIPELINES)(serving.serve)
app.add_typer(housekeeping.runs, rich_help_panel=RECORDS)  # lists runs; runs rm RUN
app.command(rich_help_panel=RECORDS)(records.show)
app.command(rich_help_panel=RECORDS)(timeline.timeline)
app.command(rich_help_panel=RECORDS)(running.resume)
app.add_typer(cache.app, rich_help_panel=RECORDS)
app.command(rich_help_panel=RECORDS)(housekeeping.gc)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"legato {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option(
        "--debug", help="On an error, show the full traceback.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    ctx.obj = Settings(debug=debug)


def main() -> None:
    """The ``legato`` console script."""
    app()
