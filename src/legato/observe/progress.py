"""A rich progress bar over a run: advanced by ItemFinished events, failures counted."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from legato.engine import EventBus, Run
from legato.engine.events import Event, ItemFinished


def with_progress(
    run: Run, bus: EventBus, *, total: int | None, label: str
) -> Generator[Any, None, None]:
    """Iterate ``run.results()`` while a progress bar (on stderr) shows items done and failed."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = progress.add_task(label, total=total, failed=0)
    failed = 0

    def on_event(event: Event) -> None:
        nonlocal failed
        if isinstance(event, ItemFinished) and event.run == run.id and not event.cancelled:
            if not event.ok:
                failed += 1
            progress.update(task, advance=1, failed=failed)

    unsubscribe = bus.subscribe(on_event)
    try:
        with progress:
            yield from run.results()
    finally:
        unsubscribe()
