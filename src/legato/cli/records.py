"""``legato runs`` and ``legato show``: the runs the store recorded, and one run in detail.

``show`` prints the run's header (what ran, on what, how it went), one row per node with its
executions, failures, retries, cache hits and timings, and the errors: grouped by node and
message by default, each failed attempt with its traceback under ``--errors``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from legato.cli.common import Json, RunId, StoreUrl, UsageError, opened, reporting, stderr, stdout
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
    limit: Annotated[int, typer.Option(
        "--limit", "-n", min=1, help="Show at most this many runs, newest first.")] = 20,
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


_INDEX = re.compile(r"\[\d+\]")


def node_name(path: str) -> str:
    """A node execution's path with its map indices folded: ``each[3]/score`` -> ``each[*]/score``,
    so the executions of one node across map elements are counted together."""
    return _INDEX.sub("[*]", path)


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


BEFORE_NODES = "(before any node)"  # where an item failed that no node ran for (its inputs)
_NODE_PREFIX = re.compile(r"^node '[^']*'(?: \([^)]*\))? failed on item \d+, attempt \d+: ")
_ITEM_PREFIX = re.compile(r"^item \d+: ")


def headline(error: str | None) -> str:
    """The first line of an error message, without what every item's copy of it differs in
    (``node 'x' (f.py:3) failed on item 7, attempt 1: ``, ``item 7: ``), so that equal errors
    group together."""
    lines = (error or "").strip().splitlines()
    if not lines:
        return "(no error recorded)"
    return _ITEM_PREFIX.sub("", _NODE_PREFIX.sub("", lines[0]))


def _header(console: Console, run: RunRecord) -> None:
    status = state(run)
    console.print(Text.assemble(("run ", "bold"), (run.id, "bold"), "  ", run.pipeline, "  ",
                                styled(status)))
    fields: list[tuple[str, str]] = []
    if run.target:
        fields.append(("target", run.target))
    inputs = {k: v for k, v in run.inputs.items() if k != "given" and v is not None}
    if inputs:
        source = inputs.pop("source", None)
        listed = [str(source)] if source is not None else []
        fields.append(("inputs", ", ".join(listed + [f"{k}={v}" for k, v in inputs.items()])))
    options = {k: v for k, v in run.options.items() if v is not None}
    if options:
        fields.append(("options", ", ".join(f"{k}={v}" for k, v in options.items())))
    took = ("running for " if run.finished is None else "took ") + seconds(elapsed(run))
    fields.append(("started", f"{moment(run.started)}  ({took})"))
    fields.append(("items", f"{run.done} done, {run.failed} failed"))
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


def _errors(console: Console, nodes: list[NodeRecord], items: list[ItemRecord], *,
            full: bool, run: str) -> None:
    """Failed items and attempts: grouped by node and message, or (``full``) each one with its
    traceback."""
    failed = [(r, outcome) for r, outcome in outcomes(nodes)
              if r.status in ("failed", "retried")]
    reached = {r.item for r, outcome in failed if outcome == "failed"}
    unplaced = [i for i in items if i.status == "failed" and i.index not in reached]
    if not failed and not unplaced:
        return
    if full:
        for record, outcome in sorted(failed, key=lambda pair: (pair[0].item, pair[0].start)):
            retried = ", retried" if outcome == "retried" else ""
            worker = f" on {record.worker}" if record.worker else ""
            console.print()
            console.print(Text.assemble(
                (f"item {record.item}", "bold"), " · ", (record.node, "bold"),
                f" · attempt {record.attempt}{retried}{worker}"))
            console.print(Text((record.traceback or record.error or "(no error recorded)")
                               .rstrip(), style="red"), soft_wrap=True)
        for item in unplaced:
            console.print()
            console.print(Text.assemble((f"item {item.index}", "bold"), f" · {BEFORE_NODES}"))
            console.print(Text(headline(item.error), style="red"), soft_wrap=True)
        return
    console.print()
    failures: dict[tuple[str, str], set[int]] = {}  # (node, message) -> items it failed
    retries: Counter[tuple[str, str]] = Counter()  # (node, message) -> attempts retried
    for record, outcome in failed:
        key = (node_name(record.node), headline(record.error))
        if outcome == "retried":
            retries[key] += 1
        else:
            failures.setdefault(key, set()).add(record.item)
    for item in unplaced:
        failures.setdefault((BEFORE_NODES, headline(item.error)), set()).add(item.index)
    console.print(Text("errors", style="bold"))
    keys = sorted(failures.keys() | retries.keys(),
                  key=lambda key: (key[0] == BEFORE_NODES, -len(failures.get(key, ())),
                                   -retries[key], min(failures.get(key, {-1})), key))
    for key in keys:
        node, message = key
        parts = []
        if key in failures:
            listed = sorted(failures[key])
            shown = ", ".join(map(str, listed[:8])) + (", ..." if len(listed) > 8 else "")
            parts.append(f"{len(listed)} item{'s' if len(listed) != 1 else ''} failed ({shown})")
        if retries[key]:
            parts.append(f"{retries[key]} attempt{'s' if retries[key] != 1 else ''} retried")
        console.print(Text.assemble("  ", (node, "bold"), "  ", ", ".join(parts), ": ",
                                    (message, "red")))
    console.print(Text(f"  legato show {run} --errors shows each with its traceback",
                       style="dim"))


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

    The errors are grouped by node and message; --errors prints each failed attempt with its
    traceback. --item N lists that item's node executions one by one.
    """
    with reporting(ctx), opened(store) as opened_store:
        run = opened_store.run(run_id)
        nodes = opened_store.nodes(run.id)
        items = opened_store.items(run.id)
        if item is not None:
            nodes = [r for r in nodes if r.item == item]
            items = [i for i in items if i.index == item]
            if not nodes and not items:
                raise UsageError(f"run {run.id} has no item {item}")
        if as_json:
            summaries = [dataclasses.asdict(row) for row in summarize(nodes)]
            typer.echo(json.dumps({"run": run_json(run), "nodes": summaries},
                                  ensure_ascii=False))
            return
        console = stdout()
        _header(console, run)
        console.print()
        if item is not None:
            console.print(_executions(nodes, origin=run.started))
        elif nodes:
            console.print(_node_table(summarize(nodes)))
        else:
            console.print(Text("no node executions recorded", style="dim"))
        _errors(console, nodes, items, full=errors, run=run.id)


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


