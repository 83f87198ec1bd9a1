"""What a component reports it used during a call: ``legato.report_usage(tokens=123)``.

Rate limits counted in tokens (``RateLimit(tokens=..., per=...)``) are charged what the call
reports. The backend opens a fresh record around each call (``recording()``); outside a call,
reporting does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar

_CURRENT: ContextVar[dict[str, float] | None] = ContextVar("legato_usage", default=None)


def report_usage(**amounts: float) -> None:
    """Add to what the running call used: ``report_usage(tokens=512)``."""
    record = _CURRENT.get()
    if record is None:
        return
    for name, amount in amounts.items():
        record[name] = record.get(name, 0.0) + float(amount)


@contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Collect what the code inside reports; the dict is filled as it runs."""
    record: dict[str, float] = {}
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        # closed elsewhere (an abandoned coroutine, closed by the garbage collector in another
        # context): that context, and its value, are gone
        with suppress(ValueError):
            _CURRENT.reset(token)
