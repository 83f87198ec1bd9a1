"""How the record commands show values to people: durations, times, sizes, statuses."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from rich.table import Table

STATUS_STYLE = {"ok": "green", "failed": "red", "cancelled": "yellow", "running": "cyan",
                "interrupted": "yellow", "retried": "yellow", "cached": "blue"}


def seconds(value: float | None) -> str:
    """A duration for people: ``850µs``, ``12ms``, ``3.4s``, ``2m 05s``, ``1h 02m``; ``-`` for
    none."""
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f}µs"
    if value < 1:
        return f"{value * 1e3:.0f}ms" if value >= 0.01 else f"{value * 1e3:.1f}ms"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def moment(epoch: float) -> str:
    """An epoch time as local ``YYYY-MM-DD HH:MM:SS``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def size(count: int) -> str:
    """Bytes for people: ``512 B``, ``2.0 KiB``, ``3.4 MiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def styled(status: str) -> Text:
    """A status coloured by what it means (green ok, red failed, ...)."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def new_table(**options: Any) -> Table:
    """A borderless table with bold headers, as every record command prints (rich.table is
    imported here, when a command draws one, not when ``legato`` starts)."""
    from rich.table import Table

    return Table(box=None, header_style="bold", pad_edge=False, **options)
