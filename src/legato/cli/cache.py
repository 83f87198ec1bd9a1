"""``legato cache ls`` and ``legato cache clear``: the cached node outputs in the store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.common import Json, StoreUrl, opened, reporting, stderr, stdout
from legato.cli.formats import moment, new_table, size

if TYPE_CHECKING:
    from legato.store.records import CacheRecord

app = typer.Typer(name="cache", no_args_is_help=True,
                  help="List or clear cached node outputs (of cache=True components).")

Component = Annotated[str | None, typer.Option(
    "--component", "-c", metavar="NAME", help="Only this component's entries.")]


@app.command("ls")
def ls(
    ctx: typer.Context, component: Component = None, as_json: Json = False,
    store: StoreUrl = None,
) -> None:
    """List cache entries per component: key, size, hits, when created."""
    with reporting(ctx), opened(store) as opened_store:
        entries: list[CacheRecord] = opened_store.cache_entries()
        if component is not None:
            entries = [e for e in entries if e.component == component]
        if as_json:
            for entry in entries:
                typer.echo(json.dumps({"key": entry.key, "component": entry.component,
                                       "created": entry.created, "size": entry.size,
                                       "hits": entry.hits}))
            return
        if not entries:
            which = f" for {component}" if component else ""
            stderr.print(f"no cache entries{which}")
            return
        table = new_table(show_footer=True)
        table.add_column("COMPONENT", no_wrap=True, footer=f"{len(entries)} entries")
        table.add_column("KEY", no_wrap=True)
        table.add_column("SIZE", justify="right", footer=size(sum(e.size for e in entries)))
        table.add_column("HITS", justify="right", footer=str(sum(e.hits for e in entries)))
        table.add_column("CREATED", no_wrap=True)
        for entry in sorted(entries, key=lambda e: (e.component, -e.created)):
            table.add_row(entry.component, entry.key[:16], size(entry.size), str(entry.hits),
                          moment(entry.created))
        stdout().print(table)


@app.command("clear")
def clear(
    ctx: typer.Context, component: Component = None, store: StoreUrl = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Say what would be removed; remove nothing.")] = False,
) -> None:
    """Remove cache entries: all of them, or one component's.

    The stored values that only those entries used are removed too (said on stderr).
    """
    from legato.store.housekeeping import clear_cache

    with reporting(ctx), opened(store) as opened_store:
        freed = clear_cache(opened_store, component, dry_run=dry_run)
        which = f" of {component}" if component else ""
        verb = "would remove" if dry_run else "removed"
        typer.echo(f"{verb} {freed.entries} cache entr{'y' if freed.entries == 1 else 'ies'}"
                   f"{which}")
        stderr.print(f"{'would free' if dry_run else 'freed'} {freed.blobs} blob"
                     f"{'s' if freed.blobs != 1 else ''} ({size(freed.bytes)})")
