"""What a run may reuse instead of computing: the Memo protocol.

The engine knows no store. A run handed a :class:`Memo` asks it twice:

- ``item(index)``, when an item is admitted: a resumed run's item whose result was recorded
  is finished at once with that result (its nodes never start);
- ``node(item, name, target, kwargs)``, when a call node's inputs are ready: the memo answers
  with :class:`Reuse` (the outputs: a cache hit, or the recorded outputs of a resumed run's
  node), with a cache key (a miss: the outputs are to be stored under it when the call
  finishes; the key travels on the ``NodeFinished`` event), or with None (nothing to do).

The run store (:mod:`legato.store`) implements it; a run without one asks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from legato.component import Component, Instance


@dataclass(frozen=True, slots=True)
class Reuse:
    """A value to use instead of running: an item's result, or a node's outputs by port."""

    value: Any
    source: str  # "cache" | "resume"
    key: str = ""


class Memo(Protocol):
    """Answers a run's questions about what was done before (see the module docstring)."""

    def item(self, index: int) -> Reuse | None: ...

    def node(
        self, item: int, name: str, target: Component | Instance, kwargs: dict[str, Any]
    ) -> Reuse | str | None: ...
