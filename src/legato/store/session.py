"""Recording one run: the store, the writer and the memo a run needs, set up and closed.

:func:`record` is what ``Pipeline.map`` calls. It decides whether a run needs a store at all
(one was passed, or the run resumes, or something is cached), records the run's start (or claims
a resumed run, see :mod:`legato.store.claims`), attaches the writer to the engine's bus, and
gives the engine its memo. :meth:`Recording.feed` passes the run's items through on their way to
the engine: it records the digest of each item's inputs, and for a resumed run checks them
against what was recorded. :meth:`Recording.close` flushes the writer and closes a store it
opened.

A resumed run's inputs must be the ones it was recorded with: an item whose inputs differ, an
input with more or fewer items than the run had, stops the run with a :class:`StoreError`
naming the item (its record is left as it was), unless ``allow_changed_inputs``: then a changed
item is computed again, new items are computed, and items past the end are forgotten. An item
recorded without a digest (its inputs have no stored form, or an older legato recorded it) is
computed again.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from legato.engine.events import EventBus
from legato.errors import ConfigError, StoreError
from legato.graph import Graph
from legato.store.claims import me
from legato.store.lineage import lineage, shape
from legato.store.memo import StoreMemo
from legato.store.records import RunRecord
from legato.store.store import Resumed, Store
from legato.store.writer import Recorder
from legato.values import fingerprint

StoreArg = Store | str | Path | bool | None
CacheArg = bool | Literal["all"]


@dataclass
class Recording:
    """One run being recorded."""

    run_id: str
    store: Store
    recorder: Recorder
    memo: StoreMemo | None
    owned: bool  # the store was opened here, and is closed here
    resumed: Resumed | None = None
    allow_changed_inputs: bool = False

    def feed(self, items: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """``items``, each one's input digest recorded (and for a resumed run, checked) as it
        goes to the engine; see the module docstring."""
        resumed = self.resumed
        count = 0
        for index, raw in enumerate(items):
            digest = inputs_digest(raw)
            count = index + 1
            if resumed is not None and not self._check(resumed, index, digest):
                yield raw  # a recorded result handed back: its row stays as it is
                continue
            self.recorder.read(index, digest)
            yield raw
        if resumed is not None:
            self._check_count(resumed, count)
        self.recorder.read_all(count)

    def _check(self, resumed: Resumed, index: int, digest: str | None) -> bool:
        """Check one item of a resumed run; False when its recorded result is reused as is."""
        run = resumed.run
        if run.total is not None and index >= run.total and index not in resumed.inputs:
            if not self.allow_changed_inputs or resumed.finished:
                self._refuse(
                    f"run {run.id} had {run.total} items; its input now has more (item "
                    f"{index} is new). Give the run its own items again, or accept the new "
                    f"ones: legato resume {run.id} --allow-changed-inputs (from Python: "
                    "allow_changed_inputs=True)")
            return True
        if index not in resumed.inputs:
            return True
        recorded = resumed.inputs[index]
        if recorded is None or digest is None:
            self._forget(index)  # no digest to compare with: computed again, to be safe
            return True
        if recorded != digest:
            if not self.allow_changed_inputs or resumed.finished:
                self._refuse(
                    f"item {index}'s inputs differ from those run {run.id} recorded for it "
                    f"(the data changed since): its results would not be the new inputs'. "
                    f"Give the run its own items again, or recompute the changed items: legato "
                    f"resume {run.id} --allow-changed-inputs (from Python: "
                    "allow_changed_inputs=True)")
            self._forget(index)
            return True
        return index not in resumed.items

    def _check_count(self, resumed: Resumed, count: int) -> None:
        run = resumed.run
        had = run.total if run.total is not None else (
            max(resumed.inputs) + 1 if resumed.inputs else 0)
        if count >= had:
            return
        if not self.allow_changed_inputs or resumed.finished:
            known = "had" if run.total is not None else "had read at least"
            self._refuse(
                f"run {run.id} {known} {had} items; its input now has {count} (items {count} to "
                f"{had - 1} are missing). Give the run its own items again, or drop the "
                f"missing ones: legato resume {run.id} --allow-changed-inputs (from Python: "
                "allow_changed_inputs=True)")
        self.recorder.truncate(count)

    def _forget(self, index: int) -> None:
        if self.memo is not None:
            self.memo.forget(index)

    def _refuse(self, message: str) -> NoReturn:
        """Stop the run: the run's record is put back as it was before this resume."""
        assert self.resumed is not None
        self.recorder.restore(self.resumed.run)
        raise StoreError(message)

    def close(self, *, quiet: bool = False) -> None:
        """Write what is left; raise the recording's StoreError unless ``quiet`` (the run is
        already failing with an error of its own)."""
        try:
            self.recorder.close()
        except Exception:
            if not quiet:
                raise
        finally:
            if self.owned:
                self.store.close()


def record(
    graph: Graph,
    bus: EventBus,
    *,
    store: StoreArg,
    cache: CacheArg = True,
    resume: str | None = None,
    run_id: str | None = None,
    info: Mapping[str, Any] | None = None,
    digest: Callable[[Any], str | None] = fingerprint,
    retry_failed: bool = False,
    allow_changed_inputs: bool = False,
    sample: int | None = None,
    mode: str = "run",
) -> Recording | None:
    """Start recording a run of ``graph`` (None when the run needs no store); see the module
    docstring. ``store``: a Store, a URL or path, True for the default store, None for the
    default store only if the run resumes or caches, False for none. ``digest``: the
    backend's fingerprint of a value (for cache keys). ``retry_failed``: a resumed run may be
    of changed code, the same wiring (see :meth:`Store.resume`); ``allow_changed_inputs``: a
    resumed run's changed items are computed again instead of refused. ``sample``: record the
    rows of the first ``sample`` items only (and every failure): a long stream. ``mode``: how
    the run is driven (``run``, ``map``, ``stream``, ``serve``), recorded for the UI."""
    if (retry_failed or allow_changed_inputs) and resume is None:
        raise ConfigError("retry_failed= and allow_changed_inputs= apply to a resumed run; "
                          "pass resume=RUN with them")
    if cache not in (True, False, "all"):
        raise ConfigError(f"cache must be True, False or 'all', got {cache!r}")
    caching = cache == "all" or (cache is True and graph.caching())
    if store is False:
        if resume is not None or cache == "all":
            raise ConfigError("resume= and cache='all' need a store; drop store=False")
        return None
    if store is None and resume is None and not caching:
        return None
    owned = not isinstance(store, Store)
    opened = store if isinstance(store, Store) else Store.open(
        None if store is None or store is True else store)
    try:
        fingerprint = graph.fingerprint()
        resumed = None
        if resume is not None:
            resumed = opened.resume(resume, fingerprint=fingerprint, shape=shape(graph),
                                    lineage=lineage(graph), retry_failed=retry_failed)
            run_id = resumed.run.id
        else:
            run_id = run_id or uuid.uuid4().hex[:12]
            details = dict(info or {})
            holder = me()
            opened.start_run(RunRecord(
                id=run_id, pipeline=graph.name, fingerprint=fingerprint, status="running",
                started=time.time(), finished=None, done=0, failed=0, error=None,
                target=details.get("target"), inputs=dict(details.get("inputs") or {}),
                options=dict(details.get("options") or {}), host=holder.host,
                pid=holder.pid, process=holder.process, total=_count(details), mode=mode),
                shape=shape(graph), lineage=lineage(graph))
        memo = None
        if resumed is not None or caching:
            memo = StoreMemo(opened, cache_all=cache == "all", caching=cache is not False,
                             resumed=resumed, digest=digest)
        recorder = Recorder(opened, run_id,
                            cache_names=memo.cache_names if memo is not None else None,
                            sample=sample,
                            graph=(fingerprint, functools.partial(_pipeline_json, graph)))
        if resumed is not None and resumed.finished:
            recorder.restore(resumed.run)  # a finished run's record stays as it is
        recorder.attach(bus)
    except BaseException:
        if owned:
            opened.close()
        raise
    return Recording(run_id, opened, recorder, memo, owned, resumed, allow_changed_inputs)


def _pipeline_json(graph: Graph) -> str | None:
    """The pipeline JSON the UI draws (None, quietly, if a graph cannot be described)."""
    from legato import draw

    try:
        return draw.to_json(graph, indent=None)
    except Exception:  # a description is a nicety: never fail a run over it
        return None


def _count(info: Mapping[str, Any]) -> int | None:
    """The run's item count, when its input's summary has it (a list's length)."""
    count = (info.get("inputs") or {}).get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def inputs_digest(raw: Any) -> str | None:
    """The digest of one item's inputs (a mapping of input name to value): the same for equal
    inputs in any order, in any process; None when an input has no stored form."""
    try:
        if isinstance(raw, Mapping):
            return fingerprint({name: raw[name] for name in sorted(raw, key=str)})
        return fingerprint(raw)
    except Exception:  # an item that cannot be read (a malformed data line): no digest
        return None
