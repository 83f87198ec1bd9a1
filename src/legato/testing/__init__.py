"""Test kit shipped for users and for legato's own suites.

- :mod:`legato.testing.simulate`: a simulated clock and backend that run a pipeline in virtual
  time, exactly, with no real waiting.
- :class:`BackendContract` (:mod:`legato.testing.contract`): the tests every backend passes;
  a backend author subclasses it (``class TestMyBackend(BackendContract)``) and defines
  ``make_backend()``. It needs pytest, which is imported only when it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.testing.contract import BackendContract


def __getattr__(name: str) -> Any:
    """``BackendContract``, imported on first use (it imports pytest)."""
    if name == "BackendContract":
        from legato.testing.contract import BackendContract

        return BackendContract
    raise AttributeError(f"module 'legato.testing' has no attribute {name!r}")


__all__ = ["BackendContract"]
