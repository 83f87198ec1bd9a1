"""Keeping a store small: removing runs, and freeing the blobs nothing refers to any more.

- :func:`remove_runs`: a run's rows (the run, its items, its node executions) go, in one
  transaction per run; a run that a live process holds (see :mod:`legato.store.claims`) is
  refused. Its blobs stay until :func:`collect`: other runs and cache entries may share them.
- :func:`collect` (``legato gc``): first, with ``older_than``, the runs started before then
  that no live process holds; then every blob that no item result, node output or cache entry
  refers to. A blob written or confirmed within ``grace`` seconds is spared: a run that is
  recording writes its blobs a moment before the rows that name them.
- :func:`clear_cache` (``legato cache clear``): cache entries go, and of their blobs those that
  nothing else refers to.

Every function can ``dry_run``: it says what it would free, and changes nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from legato.errors import StoreError
from legato.store import claims, schema
from legato.store.database import reading, writing

if TYPE_CHECKING:
    from legato.store.records import RunRecord
    from legato.store.store import Store

GRACE = 3600.0  # seconds a new blob is spared by collect (its rows may not be written yet)
_DIGEST = re.compile(r'"([0-9a-f]{32})"')  # a blob reference in JSON (inline ones start "=")


@dataclass(frozen=True, slots=True)
class Freed:
    """What a clean-up removed (or, dry, would remove)."""

    runs: int = 0
    entries: int = 0  # cache entries
    blobs: int = 0
    bytes: int = 0  # the blobs' bytes on disk
    dry_run: bool = False


def remove_runs(store: Store, run_ids: Iterable[str], *, dry_run: bool = False
                ) -> list[RunRecord]:
    """Remove these runs' rows; the runs removed. Refuses (StoreError, before removing any) a
    run that a live process holds."""
    found = [store.run(run_id) for run_id in run_ids]
    for run in found:
        _not_held(run)
    if not dry_run:
        with writing(store.engine) as connection:
            for run in found:
                _remove(connection, run.id)
    return found


def _not_held(run: RunRecord) -> None:
    if run.status == "running":
        holder = claims.Claimant(run.host, run.pid, run.process)
        if claims.alive(holder):
            raise StoreError(f"run {run.id} is held by {holder.describe()}: it is still being "
                             "run, so it is not removed. Stop that process first")


def _remove(connection: Connection, run_id: str) -> None:
    runs, items, nodes = schema.runs, schema.items, schema.nodes
    row = connection.execute(sa.select(runs).where(runs.c.id == run_id).with_for_update()
                             ).mappings().first()
    if row is None:
        return
    if row["status"] == "running" and claims.alive(claims.Claimant(
            row["host"], row["pid"], row["process"])):  # claimed meanwhile
        raise StoreError(f"run {run_id} was resumed meanwhile by pid {row['pid']} on "
                         f"{row['host']}; it is not removed")
    connection.execute(nodes.delete().where(nodes.c.run_id == run_id))
    connection.execute(items.delete().where(items.c.run_id == run_id))
    connection.execute(runs.delete().where(runs.c.id == run_id))


def referenced(connection: Connection) -> set[str]:
    """Every blob digest that an item result, a node output or a cache entry names."""
    found: set[str] = set()
    items, nodes, cache = schema.items, schema.nodes, schema.cache
    streaming = connection.execution_options(stream_results=True, yield_per=10_000)
    for (result,) in streaming.execute(sa.select(items.c.result).where(
            items.c.result.is_not(None))):
        if not result.startswith("="):
            found.add(result)
    for column in (nodes.c.outputs, cache.c.outputs):
        for (outputs,) in streaming.execute(sa.select(column).where(column.is_not(None))):
            found.update(_DIGEST.findall(outputs))
    return found


def collect(store: Store, *, older_than: float | None = None, dry_run: bool = False,
            grace: float = GRACE, now: float | None = None) -> Freed:
    """Remove runs started more than ``older_than`` seconds ago (none: keep every run), then
    every blob nothing refers to, older than ``grace`` seconds. See the module docstring."""
    moment = time.time() if now is None else now
    removed = 0
    if older_than is not None:
        table = schema.runs
        with reading(store.engine) as connection:
            old = connection.execute(sa.select(table.c.id).where(
                table.c.started < moment - older_than)).scalars().all()
        for run_id in old:
            run = store.run(run_id)
            try:
                _not_held(run)
            except StoreError:
                continue  # still being run: kept
            removed += 1
            if not dry_run:
                with writing(store.engine) as connection:
                    _remove(connection, run_id)
    blobs, size = _sweep(store, None, dry_run=dry_run, spare_after=moment - grace)
    return Freed(runs=removed, blobs=blobs, bytes=size, dry_run=dry_run)


def clear_cache(store: Store, component: str | None = None, *, dry_run: bool = False) -> Freed:
    """Remove cache entries (of one component, by name), and the blobs only they named."""
    table = schema.cache
    chosen = sa.true() if component is None else table.c.component == component
    with writing(store.engine) as connection:
        candidates: set[str] = set()
        entries = 0
        for (outputs,) in connection.execute(sa.select(table.c.outputs).where(chosen)):
            entries += 1
            candidates.update(_DIGEST.findall(outputs))
        if not dry_run:
            connection.execute(table.delete().where(chosen))
    blobs, size = _sweep(store, candidates, dry_run=dry_run)
    return Freed(entries=entries, blobs=blobs, bytes=size, dry_run=dry_run)


def _sweep(store: Store, candidates: set[str] | None, *, dry_run: bool,
           spare_after: float | None = None) -> tuple[int, int]:
    """Delete the blobs (of ``candidates``; None: all) that nothing refers to; how many, and
    their bytes. A blob last written after ``spare_after`` is spared."""
    if candidates is not None and not candidates:
        return 0, 0
    with reading(store.engine) as connection:
        keep = referenced(connection)
    count = size = 0
    if candidates is not None:
        for key in sorted(candidates - keep):
            taken = store.blobs.size(key)
            if taken and not dry_run:
                taken = store.blobs.delete(key)
            count, size = count + (1 if taken else 0), size + taken
        return count, size
    for key, written, taken in list(store.blobs.stored()):
        if key in keep or (spare_after is not None and written > spare_after):
            continue
        if not dry_run:
            taken = store.blobs.delete(key)
        count, size = count + 1, size + taken
    return count, size

