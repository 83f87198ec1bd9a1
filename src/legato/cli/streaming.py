"""``legato stream`` and ``legato replay``: run a pipeline on an endless source, print results
as they finish, and show the stream's rate, drops and misses live.

``stream`` feeds the pipeline from ``lg.Tick(--hz)`` (for ``--duration`` seconds or ``--count``
ticks, or until Ctrl-C) or from a JSON-lines file (``--input``; ``-`` reads stdin as lines
come). ``replay`` feeds it from a record written with ``--record`` (``lg.replay``), at the
original pace or ``--speed`` times it (``--fast``: as fast as possible); ``--check`` compares
each result with the recorded one.

Each result is one JSON line, as items finish: ``{"index": i, "output": ...}``;
``--drops`` adds ``{"index": i, "dropped": {"node": ..., "reason": ...}}`` for items a queue
policy, ``max_age``, a missed deadline or an interrupt ended; a failed item is
``{"index": i, "error": ..., "node": ...}``. ``-o FILE`` writes them beside FILE and renames
it into place at the end. On stderr: a live line (rate, done, dropped, missed, overruns) while
it runs, then the final counts and each stage's latency.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from legato.cli.common import Report, StoreUrl, Target, UsageError, reporting, stderr, terminable
from legato.cli.jsonout import Encoder
from legato.cli.lines import DataLines, Malformed
from legato.cli.options import Address, BackendName, Otel, Output, Resources, engine_for, traced
from legato.cli.options import parse_resources as resources_of
from legato.cli.outputs import Replacement, refuse_overwriting
from legato.engine import Dropped, Failure
from legato.errors import ComponentError, OutputError
from legato.loader import load
from legato.pipeline import Pipeline
from legato.streaming import Stream, StreamStats, Tick

Window = Annotated[int, typer.Option(min=1, help="At most this many items in flight.")]
Drops = Annotated[bool, typer.Option(
    "--drops", help="Also write a line for each dropped item (replaced, queue_full, max_age, "
    "missed, interrupted).")]
Record = Annotated[Path | None, typer.Option(
    "--record", metavar="PATH", help="Record every source item and result to PATH, for "
    "legato replay.", show_default=False)]
Live = Annotated[float, typer.Option(
    "--every", metavar="SECONDS", help="How often the live line is refreshed (0: never).")]


def stream(
    ctx: typer.Context,
    target: Target,
    hz: Annotated[float | None, typer.Option(
        "--hz", help="Feed ticks at this rate: each item is the tick's scheduled time (s).",
        show_default=False)] = None,
    duration: Annotated[float | None, typer.Option(
        "--duration", help="With --hz: stop after this many seconds.", show_default=False)]
        = None,
    count: Annotated[int | None, typer.Option(
        "--count", min=0, help="With --hz: stop after this many ticks.", show_default=False)]
        = None,
    data: Annotated[str | None, typer.Option(
        "--input", metavar="FILE.jsonl", help="Feed the items of this JSON-lines file (one "
        "object of inputs a line; - reads stdin as lines come).", show_default=False)] = None,
    output: Output = None,
    record: Record = None,
    window: Window = 256,
    drops: Drops = False,
    every: Live = 1.0,
    store: StoreUrl = None,
    backend: BackendName = "local",
    address: Address = None,
    resources: Resources = None,
    otel: Otel = False,
) -> None:
    """Run the pipeline on a stream: ticks (--hz) or the lines of a file (--input); print each
    result as a JSON line as it finishes, and a live line of rate, drops and misses on stderr.
    Ctrl-C stops it (what is in flight is cancelled)."""
    with reporting(ctx) as report:
        if (hz is None) == (data is None):
            raise UsageError("give one source: --hz HZ (ticks) or --input FILE.jsonl")
        if hz is None and (duration is not None or count is not None):
            raise UsageError("--duration and --count go with --hz")
        if data is not None:
            refuse_overwriting(data, {"-o": output, "--record": record})
        elif output is not None and record is not None and output.resolve() == record.resolve():
            raise UsageError("-o and --record name the same file; give each its own")
        with ExitStack() as stack:
            source: Any
            if hz is not None:
                source = Tick(hz, duration=duration, count=count)
            else:
                source = _data(data or "-", stack)
            _stream(load(target), source, stack, report, output=output, record=record,
                    window=window, drops=drops, every=every, store=store, backend=backend,
                    address=address, resources=resources, otel=otel)


def replay(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="RECORD", help="A stream record (--record).")],
    target: Target,
    speed: Annotated[float, typer.Option(
        "--speed", help="Play this many times as fast as recorded (> 0).")]
        = 1.0,
    fast: Annotated[bool, typer.Option(
        "--fast", help="As fast as possible (the original time stamps are kept).")] = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Compare each result with the recorded one; exit 1 if any differs.")]
        = False,
    output: Output = None,
    window: Window = 256,
    drops: Drops = False,
    every: Live = 1.0,
    backend: BackendName = "local",
    address: Address = None,
    resources: Resources = None,
) -> None:
    """Replay a recorded stream through the pipeline with its original timing; print each
    result as a JSON line (--check: compare with the recorded results)."""
    with reporting(ctx) as report:
        from legato.streaming.record import read_record
        from legato.streaming.record import replay as replay_record

        refuse_overwriting(str(path), {"-o": output})
        source = replay_record(path, speed=None if fast else speed)
        recorded = read_record(path).outputs if check else None
        with ExitStack() as stack:
            results = _stream(load(target), source, stack, report, output=output, record=None,
                              window=window, drops=drops or check, every=every, store=None,
                              backend=backend, address=address, resources=resources,
                              keep=recorded is not None)
        if recorded is not None:
            differ = sorted(i for i in set(recorded) | set(results)
                            if _comparable(recorded.get(i)) != _comparable(results.get(i)))
            if differ:
                shown = ", ".join(str(i) for i in differ[:10])
                stderr.print(f"{len(differ)} of {len(recorded)} results differ from the "
                             f"record (items {shown}{', ...' if len(differ) > 10 else ''})",
                             style="red")
                raise typer.Exit(1)
            stderr.print(f"all {len(recorded)} results match the record", style="green")


def _comparable(value: Any) -> Any:
    """A result as JSON text (NumPy arrays and tuples compare by content)."""
    if isinstance(value, Dropped):
        return ("dropped", value.node, value.reason)
    if isinstance(value, Failure):
        return ("failed", type(value.error).__name__)
    if type(value).__name__ == "RecordedError":
        return ("failed", value.type)
    try:
        return Encoder(warn=lambda _: None).dumps(value)
    except OutputError:
        return repr(value)


def _data(data: str, stack: ExitStack) -> Iterator[Any]:
    """The items of a JSON-lines file (opened now); a malformed line stops the stream."""
    if data != "-" and not Path(data).is_file():
        raise UsageError(f"no such data file: {data}")
    if data == "-":
        return _items(DataLines(sys.stdin.buffer, data))
    raw = stack.enter_context(Path(data).open("rb"))  # noqa: SIM115 (closed with the stack)
    return _items(DataLines(raw, data))


def _items(lines: DataLines) -> Iterator[Any]:
    for item in lines:
        if isinstance(item, Malformed):
            raise UsageError(item.message)
        yield item


def _stream(pipeline: Pipeline, source: Any, stack: ExitStack, report: Report, *,
            output: Path | None, record: Path | None, window: int, drops: bool, every: float,
            store: str | None, backend: str, address: str | None,
            resources: list[str] | None, keep: bool = False,
            otel: bool = False) -> dict[int, Any]:
    """Run the stream, write its results; the results by index when ``keep``; traced with
    ``otel``."""
    stack.enter_context(terminable())
    engine = engine_for(backend, address)
    stack.enter_context(traced(engine, otel))
    replacement = None
    if output is not None:
        replacement = Replacement(output)
        replacement.open()
        stack.callback(replacement.close)
        if replacement.partial is not None:
            report.partial = (replacement.partial, output)
    out = sys.stdout if replacement is None else replacement.stream
    running = pipeline.stream(source, window=window, on_drop="keep", on_error="collect",
                              indexed=True, record=record, engine=engine,
                              resources=resources_of(resources), store=store)
    if store is not None:
        stderr.print(f"run {running.run.id}", style="dim")
    stack.callback(running.wait, 30.0)  # after close (last in, first out): records flushed
    stack.callback(running.close)
    live = _Live(running, every)
    stack.callback(live.stop)
    kept: dict[int, Any] = {}
    encoder = Encoder()
    for index, result in running:
        if keep:
            kept[index] = result
        line = _line(encoder, index, result, drops)
        if line is not None:
            out.write(line + "\n")
            out.flush()
    live.stop()
    if replacement is not None:
        replacement.commit()
        report.partial = None
    _summary(running.stats())
    return kept


def _line(encoder: Encoder, index: int, result: Any, drops: bool) -> str | None:
    if isinstance(result, Dropped):
        if not drops:
            return None
        return json.dumps({"index": index, "dropped": {"node": result.node,
                                                       "reason": result.reason}})
    if not isinstance(result, Failure):
        try:
            return encoder.line(index, result)
        except OutputError as exc:
            result = Failure(index, exc, {})
    error = result.error
    node = error.node if isinstance(error, ComponentError | OutputError) else None
    return json.dumps({"index": index, "error": str(error), "node": node}, ensure_ascii=False)


def _counts(stats: StreamStats) -> str:
    missed = sum(stats.misses.values())
    return (f"{stats.rate:.1f} items/s  {stats.items_in} in, {stats.done} done, "
            f"{stats.dropped} dropped, {missed} missed, {stats.failed} failed, "
            f"{stats.overruns} overruns")


def _summary(stats: StreamStats) -> None:
    stderr.print(_counts(stats))
    for component, reasons in sorted(stats.drops.items()):
        text = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        stderr.print(f"  dropped at {component}: {text}", style="dim")
    for stage, (p50, p99) in stats.latency.items():
        missed = stats.misses.get(stage, 0)
        stderr.print(f"  {stage}: p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"
                     + (f", {missed} missed" if missed else ""), style="dim")


class _Live:
    """The live line on stderr: rewritten in place on a terminal, a line every ``every``
    seconds otherwise (0: none)."""

    def __init__(self, running: Stream, every: float) -> None:
        self.running = running
        self.every = every
        self._stop = threading.Event()
        self._tty = stderr.is_terminal
        self._thread: threading.Thread | None = None
        if every > 0:
            self._thread = threading.Thread(target=self._show, name="legato-live", daemon=True)
            self._thread.start()

    def _show(self) -> None:
        while not self._stop.wait(self.every):
            text = _counts(self.running.stats())
            stream: IO[str] = sys.stderr
            stream.write(f"\r\x1b[2K{text}" if self._tty else text + "\n")
            stream.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._tty:
                sys.stderr.write("\r\x1b[2K")
                sys.stderr.flush()
