"""``legato timeline``: a recorded run's node executions as a Chrome trace or a Gantt chart
(rendered by :mod:`legato.observe.timeline`)."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.common import RunId, StoreUrl, UsageError, opened, reporting, stderr

if TYPE_CHECKING:
    from legato.observe.timeline import Span
    from legato.store.records import NodeRecord


class TimelineFormat(enum.StrEnum):
    """What ``legato timeline`` writes."""

    chrome = "chrome"
    png = "png"
    svg = "svg"
    pdf = "pdf"


_TIMELINE_SUFFIXES = {".json": TimelineFormat.chrome, ".png": TimelineFormat.png,
                      ".svg": TimelineFormat.svg, ".pdf": TimelineFormat.pdf}


def spans(nodes: list[NodeRecord]) -> list[Span]:
    """Node executions as timeline spans; cache hits ran nowhere and are left out."""
    from legato.observe.timeline import Span

    return [Span(r.node, r.item, r.worker, r.start, r.end, r.status, r.attempt, r.error)
            for r in nodes if r.status != "cached"]


def timeline(
    ctx: typer.Context,
    run_id: RunId,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="trace.json (Chrome trace, opens in ui.perfetto.dev), "
        "timeline.png, .svg or .pdf (a Gantt chart; needs matplotlib). Default: the trace on "
        "stdout.")] = None,
    fmt: Annotated[TimelineFormat | None, typer.Option(
        "--format", "-f", help="Default: from the -o suffix, else chrome.",
        show_default=False)] = None,
    store: StoreUrl = None,
) -> None:
    """Write a run's timeline: which node ran when, on which worker."""
    with reporting(ctx):
        chosen = fmt or (_TIMELINE_SUFFIXES.get(output.suffix.lower()) if output else None)
        if chosen is None and output is not None:
            raise UsageError(f"cannot tell the format from {output.name!r}; name it .json, .png, "
                             ".svg or .pdf, or give --format")
        chosen = chosen or TimelineFormat.chrome
        if output is None and chosen is not TimelineFormat.chrome and sys.stdout.isatty():
            raise UsageError(
                f"refusing to write a {chosen.value.upper()} chart (binary data) to the "
                f"terminal; write it to a file with -o timeline.{chosen.value}, or redirect "
                f"stdout: legato timeline {run_id} --format {chosen.value} > "
                f"timeline.{chosen.value}")
        with opened(store) as opened_store:
            run = opened_store.run(run_id)
            found = spans(opened_store.nodes(run.id))
        from legato.observe import timeline as render

        title = f"{run.pipeline} · run {run.id}"
        if chosen is TimelineFormat.chrome:
            trace = render.chrome_trace(found, title=title, origin=run.started)
            data = (json.dumps(trace, ensure_ascii=False) + "\n").encode()
        else:
            data = render.gantt(found, title=title, origin=run.started, fmt=chosen.value)
        if output is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            output.write_bytes(data)
            count = len(found)
            stderr.print(f"wrote {output} ({count} node execution{'s' if count != 1 else ''})")
