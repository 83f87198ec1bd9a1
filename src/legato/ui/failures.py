"""A run's failures, grouped: the same error raised at the same place is one group.

A group is keyed by the exception's type (the name before the first ``:`` of the recorded
error, ``ValueError: bad input`` -> ``ValueError``), the node's graph path and the location
(``file.py:LINE`` of the innermost frame of the traceback, when one was recorded). Groups come
most frequent first; each lists up to :data:`PER_GROUP` failures (item, attempt, error,
traceback and the item's inputs). Both kinds of failed attempt are listed: the ones that were
retried (``retried: true``) and the ones that failed for good.

An item's inputs are read from ``items.inputs_ref`` (recorded for failed items from schema
revision 0004 on) and made JSON-able here: containers as they are, arrays and other objects as
a short text that names their type (and shape, for arrays); null when nothing was recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from legato.store import schema
from legato.store.lineage import path_of
from legato.ui.readonly import ReadOnlyStore

PER_GROUP = 50
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_TEXT = 2_000  # characters of a value's text form kept


def error_type(error: str | None) -> str:
    """The exception type named at the start of a recorded error text."""
    if not error:
        return "Error"
    head = error.split(":", 1)[0].strip()
    return head if head and " " not in head and len(head) < 100 else "Error"


def location(traceback: str | None) -> str | None:
    """``file.py:LINE`` of the innermost frame of a formatted traceback (None without one).
    Frames of legato itself are skipped when the user's code raised below them."""
    if not traceback:
        return None
    frames = _FRAME.findall(traceback)
    if not frames:
        return None
    own = [frame for frame in frames if "/legato/" not in frame[0].replace("\\", "/")]
    path, line = (own or frames)[-1]
    return f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{line}"


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data for the browser (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value if not isinstance(value, str) or len(value) <= _TEXT else (
            value[:_TEXT] + "…")
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if depth < 6 and isinstance(value, Mapping):
        return {str(key): jsonable(item, depth + 1) for key, item in list(value.items())[:200]}
    if depth < 6 and isinstance(value, list | tuple):
        return [jsonable(item, depth + 1) for item in value[:200]]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"<{type(value).__name__} shape={tuple(shape)} dtype={value.dtype}>"
    text = repr(value)
    return text if len(text) <= _TEXT else text[:_TEXT] + "…"


def failures(store: ReadOnlyStore, run_id: str) -> dict[str, Any]:
    """``GET /api/runs/{id}/failures``: the run's failed attempts, grouped."""
    nodes, items = schema.nodes, schema.items
    inputs_ref = store.column(items, "inputs_ref")
    query = (sa.select(nodes.c.node, nodes.c.item, nodes.c.attempt, nodes.c.status,
                       nodes.c.error, nodes.c.traceback, inputs_ref)
             .select_from(nodes.outerjoin(items, sa.and_(items.c.run_id == nodes.c.run_id,
                                                         items.c.idx == nodes.c.item)))
             .where(nodes.c.run_id == run_id, nodes.c.status.in_(("failed", "retried")))
             .order_by(nodes.c.start, nodes.c.id))
    with store.reading() as connection:
        rows = connection.execute(query).all()
    groups: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    values: dict[str, Any] = {}
    for node, item, attempt, status, error, trace, reference in rows:
        kind, where, path = error_type(error), location(trace), path_of(node)
        group = groups.get((kind, path, where))
        if group is None:
            group = groups[(kind, path, where)] = {
                "type": kind, "node": path, "location": where,
                "message": error or "", "count": 0, "failures": []}
        group["count"] += 1
        if len(group["failures"]) < PER_GROUP:
            group["failures"].append({
                "item": item, "attempt": attempt, "error": error or "", "traceback": trace,
                "retried": status == "retried", "inputs": _inputs(store, reference, values)})
    ordered = sorted(groups.values(), key=lambda group: -group["count"])
    return {"groups": ordered}


def _inputs(store: ReadOnlyStore, reference: str | None, seen: dict[str, Any]) -> Any:
    if reference is None:
        return None
    if reference not in seen:
        try:
            seen[reference] = jsonable(store.value(reference))
        except Exception as exc:  # a blob gone, a class that no longer imports: say so
            seen[reference] = f"<inputs not readable: {exc}>"
    return seen[reference]


__all__ = ["PER_GROUP", "error_type", "failures", "jsonable", "location"]
