"""``legato check`` and ``legato graph``: check a pipeline's graph, draw it."""

from __future__ import annotations

import enum
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from legato.cli.common import Target, UsageError, reporting
from legato.errors import LegatoError
from legato.loader import load
from legato.pipeline import Pipeline


def check(ctx: typer.Context, target: Target) -> None:
    """Check the pipeline's graph; print every problem found (exit 1), or ok."""
    with reporting(ctx):
        pipeline = load(target)
        pipeline.check()
        count = len(pipeline.graph)
        typer.echo(f"ok: pipeline '{pipeline.name}' ({count} node{'s' if count != 1 else ''})")


class GraphFormat(enum.StrEnum):
    """What ``legato graph`` draws."""

    mermaid = "mermaid"
    dot = "dot"
    json = "json"
    svg = "svg"
    png = "png"


_SUFFIXES = {".mmd": GraphFormat.mermaid, ".mermaid": GraphFormat.mermaid,
             ".dot": GraphFormat.dot, ".gv": GraphFormat.dot, ".json": GraphFormat.json,
             ".svg": GraphFormat.svg, ".png": GraphFormat.png}


def graph(
    ctx: typer.Context,
    target: Target,
    fmt: Annotated[GraphFormat | None, typer.Option(
        "--format", "-f", help="Default: from the -o suffix, else mermaid.",
        show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Draw the pipeline's graph: Mermaid, Graphviz DOT, JSON, or SVG/PNG (needs Graphviz)."""
    with reporting(ctx):
        chosen = fmt or (_SUFFIXES.get(output.suffix.lower()) if output else None)
        chosen = chosen or GraphFormat.mermaid
        pipeline = load(target)
        if chosen in (GraphFormat.svg, GraphFormat.png):
            if output is None and chosen is GraphFormat.png and sys.stdout.isatty():
                raise UsageError("PNG is binary; write it to a file: -o graph.png")
            drawing = render(pipeline, chosen)
        else:
            drawing = _text(pipeline, chosen).encode()
        if output is None:
            sys.stdout.buffer.write(drawing)
            sys.stdout.flush()
        else:
            output.write_bytes(drawing)


def _text(pipeline: Pipeline, chosen: GraphFormat) -> str:
    if chosen is GraphFormat.dot:
        return pipeline.to_dot()
    if chosen is GraphFormat.json:
        return pipeline.to_json() + "\n"
    return pipeline.to_mermaid()


def render(pipeline: Pipeline, chosen: GraphFormat) -> bytes:
    """SVG or PNG bytes from Graphviz's ``dot`` program."""
    program = shutil.which("dot")
    if program is None:
        raise LegatoError(
            f"--format {chosen.value} needs Graphviz's 'dot' program, which is not on PATH; "
            "install Graphviz (apt-get install graphviz, brew install graphviz) or use "
            "--format mermaid"
        )
    done = subprocess.run([program, f"-T{chosen.value}"], input=pipeline.to_dot().encode(),
                          capture_output=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()
        raise LegatoError(f"Graphviz 'dot -T{chosen.value}' failed (exit {done.returncode}): "
                          f"{reason}")
    return done.stdout
