"""Timelines of a run: which node ran when, on which worker.

Two renderings of the same plain :class:`Span` list (one span per node execution, whatever
recorded it):

- :func:`chrome_trace` — the Chrome trace event format (a JSON object), which Perfetto
  (ui.perfetto.dev) and ``chrome://tracing`` open: one complete (``"X"``) event per execution,
  ``ts``/``dur`` in microseconds since the run began, one thread lane per worker, named by a
  ``thread_name`` metadata event.
- :func:`gantt` — a Gantt chart (PNG, SVG or PDF bytes, drawn with matplotlib, which is imported
  only here and only when called): one row per worker, one bar per execution coloured by node
  name, failed attempts hatched and outlined in red; each row one collection of bars, so that
  drawing takes time linear in the executions.

Lanes follow one policy in both. Spans with the same node, worker, times and status are one
execution (a batched call serving several items) and become one event listing its items. A
worker whose remaining executions overlap in time (an asyncio worker runs many calls at once)
gets as many lanes as it has calls in flight at its busiest, ``worker``, ``worker #2``, ...;
each execution goes to the first lane that is free at its start. Lanes are ordered by worker
name, numbers in names compared as numbers (``thread-2`` before ``thread-10``); spans with no
worker (``""``) come last, on ``(no worker)``.
"""

from __future__ import annotations

import heapq
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from legato.errors import LegatoError

FAILED = frozenset({"failed", "retried"})  # statuses of an attempt that raised


@dataclass(frozen=True, slots=True)
class Span:
    """One node execution: ``name`` ran for ``item`` on ``worker`` from ``start`` to ``end``.

    Times are seconds on any one clock (epoch or monotonic; only differences matter). ``status``
    is ``"ok"``, ``"failed"`` (the last attempt failed) or ``"retried"`` (it failed and was tried
    again).
    """

    name: str
    item: int
    worker: str
    start: float
    end: float
    status: str = "ok"
    attempt: int = 1
    error: str | None = None

    @property
    def duration(self) -> float:
        """Seconds the execution took."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Bar:
    """One execution placed on a lane: the span (its ``item`` the first of ``items``) and every
    item it served (more than one for a batched call)."""

    span: Span
    items: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Lane:
    """One row of a timeline: a worker (or one of its overlapping lanes) and its bars."""

    label: str
    worker: str
    bars: tuple[Bar, ...]


def lanes(spans: Iterable[Span]) -> list[Lane]:
    """Group ``spans`` into lanes, merging batched calls and splitting overlaps (module policy)."""
    merged: dict[tuple[str, str, float, float, str, int], list[Span]] = {}
    for span in spans:
        key = (span.name, span.worker, span.start, span.end, span.status, span.attempt)
        merged.setdefault(key, []).append(span)
    by_worker: dict[str, list[Bar]] = {}
    for group in merged.values():
        items = tuple(sorted(span.item for span in group))
        first = min(group, key=lambda span: span.item)
        by_worker.setdefault(first.worker, []).append(Bar(first, items))
    found: list[Lane] = []
    for worker in sorted(by_worker, key=_natural):
        bars = by_worker[worker]
        bars.sort(key=lambda bar: (bar.span.start, bar.span.end, bar.span.name, bar.items))
        rows: list[list[Bar]] = []
        free: list[tuple[float, int]] = []  # (end of the row's last bar, row index)
        for bar in bars:
            if free and free[0][0] <= bar.span.start:
                _, row = heapq.heappop(free)
            else:
                row = len(rows)
                rows.append([])
            rows[row].append(bar)
            heapq.heappush(free, (bar.span.end, row))
        name = worker or "(no worker)"
        for number, row_bars in enumerate(rows, 1):
            label = name if number == 1 else f"{name} #{number}"
            found.append(Lane(label, worker, tuple(row_bars)))
    return found


def _natural(worker: str) -> tuple[bool, list[tuple[int, str]]]:
    """Sort key: no worker last; digit runs compared as numbers."""
    parts = re.split(r"(\d+)", worker)
    return (worker == "", [(int(part), "") if part.isdigit() else (-1, part) for part in parts])


def _origin(spans: Sequence[Span], origin: float | None) -> float:
    if origin is not None:
        return origin
    return min((span.start for span in spans), default=0.0)


def _micros(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def chrome_trace(
    spans: Iterable[Span], *, title: str = "legato", origin: float | None = None
) -> dict[str, Any]:
    """The spans as a Chrome trace: ``{"traceEvents": [...], "displayTimeUnit": "ms"}``.

    One process (pid 1, named ``title``); one thread per lane (tid 1, 2, ... in lane order,
    named by ``thread_name`` and ordered by ``thread_sort_index`` metadata events); one ``"X"``
    event per execution with ``ts`` (microseconds since ``origin``, default the earliest start)
    and ``dur`` (microseconds), its node as ``name``, its status as ``cat``, and the item(s),
    attempt and error under ``args``.
    """
    spans = list(spans)
    zero = _origin(spans, origin)
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": title}}]
    executions: list[dict[str, Any]] = []
    for tid, lane in enumerate(lanes(spans), 1):
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                       "args": {"name": lane.label}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid,
                       "args": {"sort_index": tid}})
        for bar in lane.bars:
            span = bar.span
            args: dict[str, Any] = {"item": span.item, "attempt": span.attempt,
                                    "status": span.status, "worker": span.worker}
            if len(bar.items) > 1:
                args["items"] = list(bar.items)
            if span.error is not None:
                args["error"] = span.error
            event: dict[str, Any] = {
                "name": span.name, "cat": span.status, "ph": "X",
                "ts": _micros(span.start - zero), "dur": _micros(span.duration),
                "pid": 1, "tid": tid, "args": args}
            if span.status in FAILED:
                event["cname"] = "terrible" if span.status == "failed" else "bad"
            executions.append(event)
    executions.sort(key=lambda event: (event["ts"], event["tid"]))
    return {"traceEvents": events + executions, "displayTimeUnit": "ms"}


GANTT_FORMATS = ("png", "svg", "pdf")


def gantt(
    spans: Iterable[Span], *, title: str = "", origin: float | None = None, fmt: str = "png"
) -> bytes:
    """A Gantt chart of the spans as ``fmt`` (png, svg or pdf) bytes: the figure
    :func:`gantt_figure` draws.

    Raises :class:`LegatoError` when matplotlib is not installed, saying what to install.
    """
    if fmt not in GANTT_FORMATS:
        raise LegatoError(f"a timeline chart is png, svg or pdf, got {fmt!r}")
    figure = gantt_figure(spans, title=title, origin=origin, fmt=fmt)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=120)
    return buffer.getvalue()


def gantt_figure(
    spans: Iterable[Span], *, title: str = "", origin: float | None = None, fmt: str = "png"
) -> Any:
    """The Gantt chart as a matplotlib ``Figure``: one row per lane, time in seconds since
    ``origin`` (default the earliest start) along x, one colour per node name; failed attempts
    are outlined in red and hatched (``xx`` failed, ``//`` retried).

    Drawing takes time linear in the executions: each lane is one ``broken_barh`` collection
    holding all its bars (colours and outlines per bar), plus one hatched overlay per lane for
    its failed attempts and one for its retried ones, so the number of artists grows with the
    lanes, never with the executions. ``fmt`` only names the format in the error raised when
    matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise LegatoError(
            f"drawing a timeline as {fmt.upper()} needs matplotlib, which is not installed; "
            "install it with pip install 'legato[plot]', or write a Chrome trace instead "
            "(-o trace.json) and open it in Perfetto") from None

    spans = list(spans)
    zero = _origin(spans, origin)
    rows = lanes(spans)
    names = sorted({span.name for span in spans})
    palette = _palette(len(names))
    colour = dict(zip(names, palette, strict=True))

    height = 1.2 + 0.32 * max(len(rows), 1)
    figure = Figure(figsize=(12, min(height, 60)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row, lane in enumerate(rows):
        _draw_lane(axes, lane, row, zero, colour)
    axes.set_yticks(range(len(rows)), [lane.label for lane in rows])
    axes.set_ylim(len(rows) - 0.5, -0.5)  # the first lane on top
    axes.set_xlabel("seconds since the run began")
    axes.grid(axis="x", alpha=0.3)
    if title:
        axes.set_title(title)
    shown = names[:20]
    handles = [Patch(facecolor=colour[name], label=name) for name in shown]
    if len(names) > len(shown):
        handles.append(Patch(facecolor="white", label=f"... {len(names) - len(shown)} more"))
    statuses = {span.status for span in spans}
    if "failed" in statuses:
        handles.append(Patch(facecolor="white", edgecolor=_RED, hatch="xx", label="failed"))
    if "retried" in statuses:
        handles.append(Patch(facecolor="white", edgecolor=_RED, hatch="//",
                             label="failed, retried"))
    if handles:
        figure.legend(handles=handles, loc="outside right upper", fontsize="small")
    return figure


_RED = "#d62728"
_HATCHES = {"failed": "xx", "retried": "//"}


def _draw_lane(axes: Any, lane: Lane, row: int, zero: float, colour: dict[str, Any]) -> None:
    """One lane's bars as one ``broken_barh`` (a colour and an outline per bar), then one
    hatched overlay per failure status present in the lane."""
    spans = [bar.span for bar in lane.bars]
    extent = (row - 0.4, 0.8)
    ranges = [(span.start - zero, max(span.duration, 0.0)) for span in spans]
    failed = [span.status in FAILED for span in spans]
    axes.broken_barh(ranges, extent, facecolors=[colour[span.name] for span in spans],
                     edgecolors=[_RED if bad else "none" for bad in failed],
                     linewidths=[1.2 if bad else 0.0 for bad in failed])
    for status, hatch in _HATCHES.items():
        marked = [ranges[i] for i, span in enumerate(spans) if span.status == status]
        if marked:
            axes.broken_barh(marked, extent, facecolors="none", edgecolors=_RED,
                             linewidths=1.2, hatch=hatch)


def _palette(count: int) -> list[Any]:
    """``count`` distinct colours: matplotlib's tab10, then tab20, then an evenly spaced hsv."""
    from matplotlib import colormaps

    if count <= 10:
        return [colormaps["tab10"](i) for i in range(count)]
    if count <= 20:
        return [colormaps["tab20"](i) for i in range(count)]
    return [colormaps["hsv"](i / count) for i in range(count)]
