"""``legato runs rm`` and ``legato gc``: removing runs, and freeing blobs nothing refers to.

``runs`` is a group: with no subcommand it lists runs (:func:`legato.cli.records.runs`), and
``runs rm RUN...`` removes runs. ``gc`` removes runs older than ``--older-than`` (when given),
then every blob that no run or cache entry names. Both say what they freed; ``--dry-run`` says
what they would free and changes nothing. See :mod:`legato.store.housekeeping`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli import records
from legato.cli.common import Json, Limit, StoreUrl, UsageError, opened, reporting
from legato.cli.formats import size

if TYPE_CHECKING:
    from legato.store.housekeeping import Freed

runs = typer.Typer(name="runs", invoke_without_command=True, no_args_is_help=False,
                   help=records.runs.__doc__)

DryRun = Annotated[bool, typer.Option(
    "--dry-run", help="Say what would be removed; remove nothing.")]


@runs.callback()
def listing(
    ctx: typer.Context,
    limit: Limit = 20,
    as_json: Json = False,
    store: StoreUrl = None,
) -> None:
    """List recorded runs, newest first: id, pipeline, status, items, start and duration."""
    if ctx.invoked_subcommand is None:
        records.runs(ctx, limit=limit, as_json=as_json, store=store)


@runs.command("rm")
def rm(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(
        metavar="RUN...", help="Run ids, or unique prefixes of them.")],
    dry_run: DryRun = False,
    store: StoreUrl = None,
) -> None:
    """Remove runs: their items and node executions.

    A run that a live process is running is refused. Their values stay in the blob store until
    legato gc.
    """
    from legato.store.housekeeping import remove_runs

    with reporting(ctx), opened(store) as opened_store:
        removed = remove_runs(opened_store, run_ids, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for run in removed:
            typer.echo(f"{verb} run {run.id} ({run.pipeline}, {run.status})")
        typer.echo("legato gc frees the values no other run or cache entry uses")


_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def age(text: str) -> float:
    """``30d`` -> seconds (units s, m, h, d, w)."""
    found = _AGE.match(text.strip())
    if found is None:
        raise UsageError(f"--older-than expects a number and a unit (s, m, h, d, w), e.g. "
                         f"30d or 12h; got {text!r}")
    return float(found.group(1)) * _UNIT[found.group(2)]


def gc(
    ctx: typer.Context,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="AGE", help="First remove runs started longer ago than this "
        "(30d, 12h, 90m); runs being run are kept.", show_default=False)] = None,
    dry_run: DryRun = False,
    store: StoreUrl = None,
) -> None:
    """Free space: remove old runs (--older-than), then values that nothing uses.

    A stored value that no run and no cache entry uses is removed; one written in the last
    hour is kept (a run being recorded writes its values a moment before the rows that name
    them). Prints what was freed.
    """
    from legato.store.housekeeping import collect

    with reporting(ctx):
        seconds = None if older_than is None else age(older_than)
        with opened(store) as opened_store:
            freed = collect(opened_store, older_than=seconds, dry_run=dry_run)
        typer.echo(describe(freed))


def describe(freed: Freed) -> str:
    """``freed 3 runs, 12 blobs (4.2 MiB)``, or ``would free ...`` for a dry run."""
    parts = []
    if freed.runs:
        parts.append(f"{freed.runs} run{'s' if freed.runs != 1 else ''}")
    if freed.entries:
        parts.append(f"{freed.entries} cache entr{'y' if freed.entries == 1 else 'ies'}")
    parts.append(f"{freed.blobs} blob{'s' if freed.blobs != 1 else ''} ({size(freed.bytes)})")
    return f"{'would free' if freed.dry_run else 'freed'} {', '.join(parts)}"
