"""Admission's decision, as a pure function: may one call start now, and if not, on what does it
wait?

:func:`decide` looks only at plain data (what the call needs, what is free, whether a warm slot
is idle, when its rate limit allows it, the time) and answers :data:`ADMIT`, :class:`Wait` (until
something comes free: ``on`` names it) or :class:`Wait` with ``until`` (look again then: a rate
limit). The :class:`~legato.engine.allocator.Allocator` holds and gives back; this says why a
call waits, for the ``AdmissionWaited`` event and for the user who asks.

The rules, in order:

1. a rate limit that allows the call only later: wait until then (``"rate_limit"``);
2. a class component with no idle slot and no room for a new one: wait for a slot (``"slot"``);
3. a resource with less free than the call needs: wait for it (``"resource:NAME"``);
4. else admit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Wait:
    """The call waits: for ``on`` to come free, or (``until`` set) until that clock time."""

    on: str
    until: float | None = None


Admit = Literal["admit"]
ADMIT: Final[Admit] = "admit"


def decide(
    *,
    needs: Mapping[str, float],
    free: Mapping[str, float],
    slot_free: bool = True,
    allowed_at: float | None = None,
    now: float,
) -> Admit | Wait:
    """Whether a call needing ``needs`` (resource name to amount) may start at ``now``.

    ``free``: what the pool has free by name; ``slot_free``: False when a class component has
    no idle warm instance and cannot build another; ``allowed_at``: when its rate limit lets the
    next call through (None: no limit).
    """
    if allowed_at is not None and allowed_at > now:
        return Wait("rate_limit", until=allowed_at)
    if not slot_free:
        return Wait("slot")
    for name, amount in needs.items():
        if amount > 0 and free.get(name, 0.0) + _EPS < amount:
            return Wait(f"resource:{name}")
    return ADMIT
