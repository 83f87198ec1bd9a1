"""``legato runs`` and ``legato show``: the runs the store recorded, and one run in detail.

``show`` prints the run's header (what ran, on what, how it went), one row per node with its
executions, failures, retries, cache hits and timings, and the errors: grouped by node and
message by default, each failed attempt with its traceback under ``--errors``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from legato.cli.common import (
    Json,
    Limit,
    RunId,
    StoreUrl,
    UsageError,
    opened,
    reporting,
    stderr,
    stdout,
)
from legato.cli.failures import (
    BEFORE_NODES,
    Failure,
    FailureGroup,
    group_failures,
    headline,
    node_name,
)
from legato.cli.formats import moment, new_table, seconds, styled

if TYPE_CHECKING:
    from rich.table import Table

    from legato.store.records import ItemRecord, NodeRecord, RunRecord


def state(run: RunRecord) -> str:
    """The run's status, with ``interrupted`` for a ``running`` run whose process (on this host)
    is gone: it died, and ``legato resume`` continues it."""
    if run.status != "running" or run.host != socket.gethostname():
        return run.status
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:  # alive, another user's
        return run.status
    return run.status


def elapsed(run: RunRecord) -> float | None:
    """The run's duration; for a run still going, the time since it started."""
    if run.duration is not None:
        return run.duration
    return time.time() - run.started if state(run) == "running" else None


def run_json(run: RunRecord) -> dict[str, Any]:
    """The run as JSON data (``--json``), its status as :func:`state` gives it."""
    return {"id": run.id, "pipeline": run.pipeline, "status": state(run),
            "started": run.started, "finished": run.finished, "duration": run.duration,
            "done": run.done, "failed": run.failed, "error": run.error, "target": run.target,
            "inputs": run.inputs, "options": run.options, "host": run.host, "pid": run.pid,
            "fingerprint": run.fingerprint}


# -- runs ----------------------------------------------------------------------------------------


def runs(
    ctx: typer.Context,
    limit: Limit = 20,
    as_json: Json = False,
    store: StoreUrl = None,
) -> None:
    """List recorded runs, newest first: id, pipeline, status, items, start and duration."""
    with reporting(ctx), opened(store) as opened_store:
        found = opened_store.runs(limit=limit)
        if as_json:
            for run in found:
                typer.echo(json.dumps(run_json(run), ensure_ascii=False))
            return
        if not found:
            stderr.print("no runs recorded yet; legato map records every run it makes")
            return
        table = new_table()
        for column in ("RUN", "PIPELINE", "STATUS"):
            table.add_column(column, no_wrap=True)
        table.add_column("DONE", justify="right")
        table.add_column("FAILED", justify="right")
        table.add_column("STARTED", no_wrap=True)
        table.add_column("DURATION", justify="right", no_wrap=True)
        for run in found:
            table.add_row(run.id, run.pipeline, styled(state(run)), str(run.done),
                          Text(str(run.failed), style="red" if run.failed else ""),
                          moment(run.started), seconds(elapsed(run)))
        stdout().print(table)


# -- show ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSummary:
    """One node's executions in a run, as ``legato show`` lists them.

    ``calls``: (item, node path) pairs that reached the node (a mapped node counts each
    element); ``ok``, ``failed``, ``cached``: how those calls ended (a cache hit ran nothing);
    ``retried``: attempts that failed and were tried again; ``p50`` and ``max``: seconds over
    every attempt that ran (``None`` when none ran); ``attempts``: the most one call took.
    """

    node: str
    calls: int
    ok: int
    failed: int
    retried: int
    cached: int
    p50: float | None
    max: float | None
    attempts: int


def outcomes(nodes: list[NodeRecord]) -> list[tuple[NodeRecord, str]]:
    """Each record with how its attempt turned out, by start: a call's (item, node path) last
    record keeps its status; an earlier one that failed is ``"retried"`` (by a retry, or by a
    resume of the run), so each call counts once as ok, failed or cached."""
    ordered = sorted(nodes, key=lambda r: (r.start, r.attempt))
    last = {(r.item, r.node): r for r in ordered}
    return [(r, r.status if last[(r.item, r.node)] is r or r.status not in ("failed", "retried")
             else "retried") for r in ordered]


def summarize(nodes: list[NodeRecord]) -> list[NodeSummary]:
    """One :class:`NodeSummary` per node name (map indices folded), in order of first start."""
    groups: dict[str, list[tuple[NodeRecord, str]]] = {}
    for record, outcome in outcomes(nodes):
        groups.setdefault(node_name(record.node), []).append((record, outcome))
    found = []
    for name, records in groups.items():
        ran = [r.duration for r, _ in records if r.status != "cached"]
        count = Counter(outcome for _, outcome in records)
        found.append(NodeSummary(
            node=name, calls=len({(r.item, r.node) for r, _ in records}), ok=count["ok"],
            failed=count["failed"], retried=count["retried"], cached=count["cached"],
            p50=statistics.median(ran) if ran else None, max=max(ran) if ran else None,
            attempts=max(r.attempt for r, _ in records)))
    return found


@dataclass(frozen=True, slots=True)
class ItemCounts:
    """A run's items as its item records tell (the truth, also for a run that died before it
    could count, and after resumes): ``done`` and ``failed`` have a recorded result;
    ``pending``: the rest of ``total``, the items the run was given (``None`` when it is not
    known: a run that read stdin, stopped before its end)."""

    done: int
    failed: int
    total: int | None

    @property
    def pending(self) -> int | None:
        return None if self.total is None else self.total - self.done - self.failed

    def describe(self, status: str) -> str:
        """``35 done, 5 failed`` (finished); ``20 done, 0 failed, 20 pending (of 40)``; for a
        run that is not over, how many items are already recorded."""
        counts = f"{self.done} done, {self.failed} failed"
        if self.pending:
            counts += f", {self.pending} pending (of {self.total})"
        if status in ("ok", "failed") and not self.pending:
            return counts
        recorded = self.done + self.failed
        return f"{counts}; {recorded} item{'s' if recorded != 1 else ''} recorded so far"


def item_counts(run: RunRecord, items: list[ItemRecord]) -> ItemCounts:
    """The run's :class:`ItemCounts`; its total from the recorded item count (``legato map``
    records it for a data file; ``Pipeline.map`` for a list), else, for a run that ended
    without being stopped, from its items."""
    done = sum(1 for item in items if item.status == "ok")
    failed = len(items) - done
    total = run.inputs.get("count")
    if not isinstance(total, int) or total < len(items):
        total = len(items) if run.status in ("ok", "failed") and not run.error else None
    return ItemCounts(done, failed, total)


def _header(console: Console, run: RunRecord, counts: ItemCounts) -> None:
    status = state(run)
    console.print(Text.assemble(("run ", "bold"), (run.id, "bold"), "  ", run.pipeline, "  ",
                                styled(status)))
    fields: list[tuple[str, str]] = []
    if run.target:
        fields.append(("target", run.target))
    inputs = {k: v for k, v in run.inputs.items() if k != "given" and v is not None}
    if inputs:
        source = inputs.pop("source", None)
        count = inputs.pop("count", None)
        listed = [str(source)] if source is not None else []
        text = ", ".join(listed + [f"{k}={v}" for k, v in inputs.items()])
        if count is not None:
            text += f" ({count} item{'s' if count != 1 else ''})"
        fields.append(("inputs", text.strip()))
    options = {k: v for k, v in run.options.items() if v is not None and k != "stream"}
    if options:
        fields.append(("options", ", ".join(f"{k}={v}" for k, v in options.items())))
    took = ("running for " if run.finished is None else "took ") + seconds(elapsed(run))
    fields.append(("started", f"{moment(run.started)}  ({took})"))
    fields.append(("items", counts.describe(status)))
    fields.append(("where", f"{run.host}, pid {run.pid}"))
    if run.error:
        fields.append(("error", run.error))
    for name, value in fields:
        console.print(Text.assemble((f"  {name:<8} ", "dim"), value))
    if status not in ("ok", "running") and run.target:
        console.print(Text.assemble(("  resume   ", "dim"), (f"legato resume {run.id}", "bold")))


def _node_table(rows: list[NodeSummary]) -> Table:
    table = new_table()
    table.add_column("NODE", no_wrap=True)
    for column in ("CALLS", "OK", "FAILED", "RETRIED", "CACHED", "P50", "MAX", "ATTEMPTS"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(row.node, str(row.calls), str(row.ok),
                      Text(str(row.failed), style="red" if row.failed else ""),
                      Text(str(row.retried), style="yellow" if row.retried else ""),
                      str(row.cached), seconds(row.p50), seconds(row.max), str(row.attempts))
    return table


def _failures(nodes: list[NodeRecord], items: list[ItemRecord]) -> list[Failure]:
    """Every failed attempt, and every failed item that no node failed for (its inputs)."""
    failed = [Failure(node_name(r.node), r.item, outcome, r.error, r.traceback)
              for r, outcome in outcomes(nodes) if r.status in ("failed", "retried")]
    reached = {f.item for f in failed if f.outcome == "failed"}
    return failed + [Failure(BEFORE_NODES, i.index, "failed", i.error, None)
                     for i in items if i.status == "failed" and i.index not in reached]


def _grouped(console: Console, groups: list[FailureGroup], *, run: str) -> None:
    """The failures, one group per node, exception type and raising line: counts, a few
    examples."""
    console.print()
    console.print(Text("errors", style="bold"))
    for group in groups:
        parts = []
        if group.items:
            shown = ", ".join(map(str, group.items[:8])) + (", ..." if len(group.items) > 8
                                                            else "")
            count = len(group.items)
            parts.append(f"{count} item{'s' if count != 1 else ''} failed ({shown})")
        if group.retried:
            parts.append(f"{group.retried} attempt{'s' if group.retried != 1 else ''} retried")
        console.print(Text.assemble("  ", (group.node, "bold"), "  ", (group.describe(), "red"),
                                    ": ", ", ".join(parts)))
        for item, said in group.examples:
            console.print(Text.assemble("      ", (f"item {item}: ", "dim"), said))
    console.print(Text(f"  legato show {run} --errors shows each with its traceback",
                       style="dim"))


def _tracebacks(console: Console, nodes: list[NodeRecord], items: list[ItemRecord]) -> None:
    """Each failed attempt with its traceback, by item; then the items no node failed for."""
    failed = [(r, outcome) for r, outcome in outcomes(nodes) if r.status in ("failed", "retried")]
    for record, outcome in sorted(failed, key=lambda pair: (pair[0].item, pair[0].start)):
        retried = ", retried" if outcome == "retried" else ""
        worker = f" on {record.worker}" if record.worker else ""
        console.print()
        console.print(Text.assemble(
            (f"item {record.item}", "bold"), " · ", (record.node, "bold"),
            f" · attempt {record.attempt}{retried}{worker}"))
        console.print(Text((record.traceback or record.error or "(no error recorded)")
                           .rstrip(), style="red"), soft_wrap=True)
    reached = {r.item for r, outcome in failed if outcome == "failed"}
    for item in items:
        if item.status == "failed" and item.index not in reached:
            console.print()
            console.print(Text.assemble((f"item {item.index}", "bold"), f" · {BEFORE_NODES}"))
            console.print(Text(headline(item.error), style="red"), soft_wrap=True)


def _where(run: RunRecord) -> Path:
    """The directory raising places are shown relative to: the run's pipeline file's."""
    if run.target:
        where = Path(run.target.rsplit(":", 1)[0] if run.target.count(":") else run.target)
        if where.suffix == ".py":
            return where.parent
    return Path.cwd()


def show(
    ctx: typer.Context,
    run_id: RunId,
    errors: Annotated[bool, typer.Option(
        "--errors", "-e", help="Every failed attempt with its traceback.")] = False,
    item: Annotated[int | None, typer.Option(
        "--item", metavar="INDEX", help="Only this item: each of its node executions.")] = None,
    as_json: Json = False,
    store: StoreUrl = None,
) -> None:
    """Show a run: its nodes with timings, failures, retries and cache hits; its errors.

    The errors are grouped by node, exception type and raising line (the innermost frame in
    your code), with a count and a few examples; --errors prints each failed attempt with its
    traceback. --item N lists that item's node executions one by one.
    """
    with reporting(ctx), opened(store) as opened_store:
        run = opened_store.run(run_id)
        nodes = opened_store.nodes(run.id)
        items = opened_store.items(run.id)
        counts = item_counts(run, items)  # the whole run's, also under --item
        if item is not None:
            nodes = [r for r in nodes if r.item == item]
            items = [i for i in items if i.index == item]
            if not nodes and not items:
                raise UsageError(f"run {run.id} has no item {item}")
        groups = group_failures(_failures(nodes, items), relative_to=_where(run))
        if as_json:
            typer.echo(json.dumps(_show_json(run, nodes, counts, groups), ensure_ascii=False))
            return
        console = stdout()
        _header(console, run, counts)
        console.print()
        if item is not None:
            console.print(_executions(nodes, origin=run.started))
        elif nodes:
            console.print(_node_table(summarize(nodes)))
        else:
            console.print(Text("no node executions recorded", style="dim"))
        if isinstance(run.options.get("stream"), dict) and item is None:
            _stream(console, run.options["stream"])
        if errors:
            _tracebacks(console, nodes, items)
        elif groups:
            _grouped(console, groups, run=run.id)


def _stream(console: Console, stats: dict[str, Any]) -> None:
    """A stream's final counters (``pipeline.stream(..., store=)``): the totals, then per
    stage its latency (p50, p99), its misses and its drops by reason."""
    console.print()
    console.print(Text.assemble(
        ("stream   ", "dim"), f"{stats.get('items_in', 0)} in, {stats.get('done', 0)} done, "
        f"{stats.get('dropped', 0)} dropped, {stats.get('overruns', 0)} overruns, "
        f"{float(stats.get('rate', 0.0)):.1f} items/s"))
    table = new_table()
    for column in ("STAGE", "P50", "P99", "MISSED", "DROPPED"):
        table.add_column(column, justify="left" if column in ("STAGE", "DROPPED") else "right",
                         no_wrap=True)
    latency, misses, drops = (stats.get(k) or {} for k in ("latency", "misses", "drops"))
    for stage in dict.fromkeys([*latency, *misses, *drops]):
        p50, p99 = latency.get(stage) or (None, None)
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(drops.get(stage, {}).items()))
        table.add_row(stage, seconds(p50), seconds(p99), str(misses.get(stage, 0)), dropped)
    console.print(table)


def _show_json(run: RunRecord, nodes: list[NodeRecord], counts: ItemCounts,
               groups: list[FailureGroup]) -> dict[str, Any]:
    """``show --json``: the run, its node rows, its item counts and its error groups."""
    return {
        "run": run_json(run),
        "nodes": [dataclasses.asdict(row) for row in summarize(nodes)],
        "items": {**dataclasses.asdict(counts), "pending": counts.pending},
        "errors": [{"node": g.node, "type": g.kind, "place": g.place, "items": g.items,
                    "retried": g.retried,
                    "examples": [{"item": i, "message": m} for i, m in g.examples]}
                   for g in groups]}


def _executions(nodes: list[NodeRecord], *, origin: float) -> Table:
    """One item's node executions, one row each, times since the run began."""
    table = new_table()
    for column in ("NODE", "ATTEMPT", "STATUS", "START", "DURATION", "WORKER", "ERROR"):
        table.add_column(column, no_wrap=column != "ERROR",
                         justify="right" if column in ("ATTEMPT", "START", "DURATION") else "left")
    for record in sorted(nodes, key=lambda r: r.start):
        error = headline(record.error) if record.error else ""
        table.add_row(record.node, str(record.attempt), styled(record.status),
                      "+" + seconds(record.start - origin), seconds(record.duration),
                      record.worker, Text(error, style="red"))
    return table


