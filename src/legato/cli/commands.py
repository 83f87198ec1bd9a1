"""The ``legato`` Typer app: the global options (``--debug``, ``--version``) and every command,
registered in the order ``legato --help`` lists them (see :mod:`legato.cli` for the exit codes).
"""

from __future__ import annotations

from typing import Annotated

import typer

from legato import __version__
from legato.cli import (
    cache,
    drawing,
    housekeeping,
    records,
    running,
    serving,
    streaming,
    timeline,
    ui,
)
from legato.cli.common import Settings

__all__ = ["app"]

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
app.command(rich_help_panel=PIPELINES)(streaming.stream)
app.command(rich_help_panel=PIPELINES)(streaming.replay)
app.command(rich_help_panel=PIPELINES)(drawing.check)
app.command(rich_help_panel=PIPELINES)(drawing.graph)
app.command(rich_help_panel=PIPELINES)(serving.serve)
app.add_typer(housekeeping.runs, rich_help_panel=RECORDS)  # lists runs; runs rm RUN
app.command(rich_help_panel=RECORDS)(records.show)
app.command(rich_help_panel=RECORDS)(timeline.timeline)
app.command(rich_help_panel=RECORDS)(running.resume)
app.add_typer(cache.app, rich_help_panel=RECORDS)
app.command(rich_help_panel=RECORDS)(housekeeping.gc)
app.command(rich_help_panel=RECORDS)(ui.ui)


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
