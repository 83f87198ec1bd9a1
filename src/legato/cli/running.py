"""``legato run``, ``map`` and ``resume``: run a pipeline on one item, or on every line of a
JSON-lines file, recorded in the run store so that a run that stopped can be continued.

``map`` records the run (unless ``--no-store``) with what ``resume`` needs to do it again: the
target (a file path made absolute), the data file, and the options (window, on_error, the
output file). ``resume RUN`` loads those, calls ``map(..., resume=RUN)`` (recorded results are
handed back, the rest is computed) and writes the whole output again, each item once.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from legato.cli.common import (
    Report,
    RunId,
    StoreUrl,
    Target,
    UsageError,
    reporting,
    stderr,
    terminable,
)
from legato.cli.jsonout import dumps
from legato.cli.lines import (
    DataFile,
    DataLines,
    FinishOrder,
    OnError,
    count_items,
    write_results,
)
from legato.cli.options import (
    Address,
    BackendName,
    Cache,
    CacheChoice,
    Events,
    Otel,
    Output,
    Progress,
    Resources,
    engine_for,
    parse_inputs,
    parse_resources,
    stdin_inputs,
    traced,
)
from legato.cli.outputs import Replacement, refuse_overwriting
from legato.engine import Engine
from legato.errors import InputError, LegatoError
from legato.loader import load, split_spec
from legato.pipeline import Pipeline


def run(
    ctx: typer.Context,
    target: Target,
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", "-i", metavar="NAME=VALUE",
        help="An input (repeat for each). Without any, a JSON object is read from stdin. "
        "VALUE is coerced to the input's type; @FILE reads JSON from FILE.")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", metavar="URL",
        help="Record the run in this store (a path, sqlite:///..., postgresql://...). One "
        "item is not recorded unless asked: `legato map` records by default.",
        show_default=False)] = None,
    backend: BackendName = "local",
    address: Address = None,
    resources: Resources = None,
    cache: Cache = CacheChoice.default,
    otel: Otel = False,
) -> None:
    """Run the pipeline on one item and print its result as JSON."""
    with reporting(ctx), terminable():
        pipeline = load(target)
        declared = parse_resources(resources)
        values = parse_inputs(inputs) if inputs else stdin_inputs()
        engine = engine_for(backend, address)
        with traced(engine, otel):
            result = _run_one(pipeline, values, store=store, engine=engine, resources=declared,
                              cache=cache)
        sys.stdout.write(dumps(result, indent=2) + "\n")
        sys.stdout.flush()


def _run_one(pipeline: Pipeline, values: dict[str, Any], *, store: str | None, engine: Engine,
             resources: dict[str, float], cache: CacheChoice) -> Any:
    try:
        return pipeline.run(values, store=store, engine=engine, resources=resources,
                            cache=cache.argument())
    except InputError as exc:
        if values:
            raise
        raise InputError(f"{exc}; give inputs as --input NAME=VALUE or as a JSON object on "
                         "stdin") from exc


# -- map and resume ----------------------------------------------------------------------------

def map_(
    ctx: typer.Context,
    target: Target,
    data: Annotated[str, typer.Argument(
        metavar="DATA.jsonl", help="One JSON object of inputs per line; - reads stdin.")],
    output: Output = None,
    window: Annotated[int, typer.Option(min=1, help="At most this many items in flight.")] = 256,
    on_error: Annotated[OnError, typer.Option(
        "--on-error", help="A failed item: written with its error (collect), left out (skip), "
        "or stops the run (raise).")] = OnError.collect,
    events: Events = None,
    progress: Progress = None,
    store: StoreUrl = None,
    no_store: Annotated[bool, typer.Option(
        "--no-store", help="Do not record the run (it cannot be resumed).")] = False,
    backend: BackendName = "local",
    address: Address = None,
    resources: Resources = None,
    cache: Cache = CacheChoice.default,
    unordered: Annotated[bool, typer.Option(
        "--unordered", help="Write each result as soon as its item finishes, not in input "
        "order (each line keeps its index).")] = False,
    otel: Otel = False,
) -> None:
    """Run the pipeline on every line of a JSON-lines file; write one result line per item.

    Each output line is {"index": i, "output": ...} or {"index": i, "error": ..., "node": ...,
    "line": n}, in input order (or as items finish, with --unordered), written as soon as it is
    known. -o FILE is written beside FILE (FILE.partial) and renamed over it at the end, so a
    run that stops leaves FILE as it was; -o naming the data file is refused. With --on-error
    collect (the default) the exit code is 1 when any item failed. The run is recorded in the
    store and its id printed on stderr: legato show RUN inspects it, legato resume RUN
    continues it. SIGTERM stops it as Ctrl-C does (exit 143), recorded and resumable.
    """
    with reporting(ctx) as report:
        if store is not None and no_store:
            raise UsageError("--store and --no-store contradict each other; give one")
        refuse_overwriting(data, {"-o": output, "--events": events})
        declared = parse_resources(resources)
        pipeline = load(target)
        counted = not no_store and data != "-" and Path(data).is_file()
        count = count_items(Path(data)) if counted else None  # recorded: show's pending
        options: dict[str, Any] = {
            "window": window, "on_error": on_error.value,
            "output": None if output is None else str(output.resolve())}
        if backend != "local":
            options.update(backend=backend, address=address)
        if declared:
            options["resources"] = declared
        if cache is not CacheChoice.default:
            options["cache"] = cache.value
        if unordered:
            options["ordered"] = False
        info = None if no_store else {
            "target": _absolute(target),
            "inputs": {"source": data if data == "-" else str(Path(data).resolve()),
                       "given": data, **({} if count is None else {"count": count})},
            "options": options}
        job = Job(data=data, name=data, output=output, window=window, on_error=on_error,
                  events=events, progress=progress, store=False if no_store else (store or True),
                  info=info, backend=backend, address=address, resources=declared,
                  cache=cache, ordered=not unordered, count=count, otel=otel)
        _map(pipeline, job, report)


def resume(
    ctx: typer.Context,
    run_id: RunId,
    data: Annotated[str | None, typer.Argument(
        metavar="DATA.jsonl", help="The run's items, when not from its recorded data file "
        "(a run that read stdin); - reads stdin.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write the results (default: where the run wrote "
        "them).", show_default=False)] = None,
    events: Events = None,
    progress: Progress = None,
    store: StoreUrl = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Take over a run that another process holds (one on another host, "
        "which legato cannot check): only when you know that process is gone.")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="The pipeline's code changed since (a fix): rerun the failed "
        "items with it, reusing recorded outputs only of nodes whose code did not change. "
        "Its wiring must be the same.")] = False,
    allow_changed_inputs: Annotated[bool, typer.Option(
        "--allow-changed-inputs", help="The data file changed since: compute changed and new "
        "items again, drop items it no longer has (by default such a resume is refused).")
    ] = False,
    otel: Otel = False,
) -> None:
    """Continue a run that stopped: killed, cancelled, or with failed items.

    Only what has no recorded result is computed (failed items are tried again); the output
    file is written again in full, each item once. The pipeline, data file and options (window,
    on-error, output) are the ones recorded when legato map started the run. The items must be
    the ones the run had (else it is refused, naming the first that differs), and one process
    at a time resumes a run: another one holding it, alive, is named in the refusal.
    """
    with reporting(ctx) as report:
        from legato.store import Store

        with Store.open(store) as opened:
            run = opened.run(run_id)
            if run.status == "ok":
                stderr.print(f"run {run.id} finished: {run.done} item"
                             f"{'s' if run.done != 1 else ''} done, nothing to resume")
                return
            recorded = sum(1 for item in opened.items(run.id) if item.status == "ok")
            if force:
                opened.release(run.id)
        if run.target is None:
            raise LegatoError(f"run {run.id} was not started by legato map (no target recorded);"
                              f" resume it from Python: pipeline.map(items, resume='{run.id}')")
        source = data or run.inputs.get("source")
        if source is None or (source == "-" and data is None):
            raise UsageError(f"run {run.id} read its items from stdin; give them again: "
                             f"legato resume {run.id} - < items.jsonl")
        given = run.inputs.get("given")
        name = given if data is None and given and _same(given, source) else data or source
        options = run.options
        written = output or (Path(options["output"]) if options.get("output") else None)
        refuse_overwriting(source, {"-o": written, "--events": events})
        pipeline = load(run.target)
        stderr.print(f"resuming run {run.id} of {run.pipeline}: {recorded} item"
                     f"{'s' if recorded != 1 else ''} recorded", style="dim")
        job = Job(data=source, name=name, output=written,
                  window=int(options.get("window", 256)),
                  on_error=OnError(options.get("on_error", OnError.collect.value)),
                  events=events, progress=progress, store=store or True, resume=run.id,
                  backend=str(options.get("backend", "local")), address=options.get("address"),
                  retry_failed=retry_failed, allow_changed_inputs=allow_changed_inputs,
                  resources=dict(options.get("resources") or {}),
                  cache=CacheChoice(options.get("cache", CacheChoice.default.value)),
                  ordered=bool(options.get("ordered", True)), count=run.inputs.get("count"),
                  otel=otel)
        _map(pipeline, job, report)


def _absolute(target: str) -> str:
    """``target`` with its file made absolute (so ``resume`` finds it from anywhere); a dotted
    module name stays as it is."""
    where, name = split_spec(target)
    if not (where.endswith(".py") or os.path.exists(where)):
        return target
    path = str(Path(where).resolve())
    return path if name is None else f"{path}:{name}"


def _same(given: str, source: str) -> bool:
    """Whether the data path ``given`` to map names ``source`` from here, too."""
    return given != "-" and source != "-" and Path(given).resolve() == Path(source)


@dataclass(frozen=True, kw_only=True)
class Job:
    """One ``map`` over a data file, as ``legato map`` and ``legato resume`` run it.

    ``data``: the file (``-``: stdin), called ``name`` in messages; ``output``: where results
    go (None: stdout); ``store``: a URL, True for the default store, False for none; ``info``:
    what a new run records for ``resume``; ``resume``: the id of the run to continue;
    ``backend`` and ``address``: where calls run (see :func:`engine_for`); ``resources``:
    custom resources the run declares; ``cache``: what answers from the cache; ``ordered``:
    results in input order; ``count``: the data file's items, when counted; ``otel``: trace
    the run (``--otel``).
    """

    data: str
    name: str
    output: Path | None
    window: int
    on_error: OnError
    events: Path | None
    progress: bool | None
    store: str | bool
    info: Mapping[str, Any] | None = None
    resume: str | None = None
    retry_failed: bool = False
    allow_changed_inputs: bool = False
    backend: str = "local"
    address: str | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    cache: CacheChoice = CacheChoice.default
    ordered: bool = True
    count: int | None = None
    otel: bool = False


def _map(pipeline: Pipeline, job: Job, report: Report) -> None:
    """Run ``job``: results written as they come (the output file renamed into place once
    complete, see :mod:`legato.cli.outputs`), the summary on stderr. SIGTERM stops it as
    Ctrl-C does."""
    with ExitStack() as stack:
        stack.enter_context(terminable())
        if job.data != "-" and not Path(job.data).is_file():
            raise UsageError(f"no such data file: {job.data}")
        engine = engine_for(job.backend, job.address)
        pipeline.check(engine=engine, resources=job.resources)
        stack.enter_context(traced(engine, job.otel))
        show = stderr.is_terminal if job.progress is None else job.progress
        source = None if job.data == "-" else stack.enter_context(open(job.data, "rb"))
        lines = _lines(job, source, counted=show)
        replacement = None if job.output is None else _output(job.output, stack, report)
        out = sys.stdout if replacement is None else replacement.stream
        run_id = job.resume or uuid.uuid4().hex[:12]
        order = _subscribe(job, engine, stack, run_id)
        results = pipeline.map(lines, window=job.window, ordered=job.ordered,
                               on_error="collect", progress=show, engine=engine,
                               resources=job.resources, store=job.store,
                               cache=job.cache.argument(), resume=job.resume,
                               run_id=None if job.resume else run_id, run_info=job.info,
                               retry_failed=job.retry_failed,
                               allow_changed_inputs=job.allow_changed_inputs)
        stack.callback(_close, results)  # on any exit: cancels what is still in flight
        if job.store is not False:
            report.resume = run_id
            if job.resume is None:
                stderr.print(f"run {run_id}", style="dim")
        done, failed = write_results(results, lines, out, job.on_error, order)
        if replacement is not None:  # every item is written: the output goes in place
            replacement.commit()
            report.partial = None
        report.resume = None  # finished: nothing to resume
        stderr.print(f"{done} done, {failed} failed")
        if failed and job.on_error is OnError.collect:
            raise typer.Exit(1)


def _subscribe(job: Job, engine: Engine, stack: ExitStack, run_id: str) -> FinishOrder | None:
    """Subscribe what the job listens to on the engine's bus until the stack closes: the events
    file (``--events``), and for an unordered job the :class:`FinishOrder` it returns."""
    if job.events is not None:
        from legato.observe.events_file import EventsFile

        job.events.parent.mkdir(parents=True, exist_ok=True)
        stream = open(job.events, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        stack.callback(stream.close)  # after the subscriber below is gone (last in, first out)
        stack.callback(engine.bus.subscribe(EventsFile(stream, run=run_id)))
    if job.ordered:
        return None
    order = FinishOrder(run_id)
    stack.callback(engine.bus.subscribe(order))
    return order


def _lines(job: Job, source: IO[bytes] | None, *, counted: bool) -> DataLines:
    """The job's items: from stdin (``source`` None), or from its data file (counted, for a
    progress bar)."""
    if source is None:
        return DataLines(sys.stdin.buffer, "stdin")
    if not counted:
        return DataLines(source, job.name)
    count = job.count if job.count is not None else count_items(Path(job.data))
    return DataFile(source, job.name, count)


def _output(target: Path, stack: ExitStack, report: Report) -> Replacement:
    """``target``'s replacement, opened; ``report`` names its partial file if the run stops."""
    replacement = Replacement(target)
    replacement.open()
    stack.callback(replacement.close)
    if replacement.partial is not None:
        report.partial = (replacement.partial, target)
    return replacement


def _close(results: Iterator[Any]) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        close()
