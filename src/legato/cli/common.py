"""What every ``legato`` command shares: the global options, the stderr console, the store,
the ``error:`` message, and :func:`reporting`, which turns what a command raises into a message
and an exit code (the codes are listed in :mod:`legato.cli`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text
from typer.exceptions import TyperException

from legato.errors import LegatoError, SpecError
from legato.errors import Terminated as Terminated  # re-exported: raised here
from legato.errors import UsageError as UsageError  # re-exported: raised by the commands

if TYPE_CHECKING:
    from legato.store import Store

stderr = Console(stderr=True, highlight=False, soft_wrap=True)

Target = Annotated[str, typer.Argument(
    metavar="FILE:PIPELINE", help="path/to/file.py:name or package.module:name")]

StoreUrl = Annotated[str | None, typer.Option(
    "--store", metavar="URL",
    help="The run store: sqlite:///path.db, postgresql://..., or a path to a .db file "
    "(default: $LEGATO_STORE, else .legato/legato.db under $LEGATO_HOME or here).",
    show_default=False)]

RunId = Annotated[str, typer.Argument(
    metavar="RUN", help="A run id, or a unique prefix of one (legato runs lists them).")]

Json = Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")]
Limit = Annotated[int, typer.Option(
    "--limit", "-n", min=1, help="Show at most this many runs, newest first.")]


@contextmanager
def terminable() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (once: a second
    SIGTERM during the clean-up is ignored; SIGKILL still ends the process). Outside the main
    thread (no signal handler can be set there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Global options, given before the command."""

    debug: bool = False


def settings(ctx: typer.Context) -> Settings:
    """The global options of this invocation (defaults when a command runs on its own)."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, Settings) else Settings()


@contextmanager
def opened(url: str | None) -> Iterator[Store]:
    """The run store at ``url`` (``None``: the default one), closed afterwards.

    The store (and SQLAlchemy) is imported here, when a command needs it, so that commands
    which do not (``legato run``) start as fast as before.
    """
    from legato.store import Store

    store = Store.open(url)
    try:
        yield store
    finally:
        store.close()


def stdout() -> Console:
    """A console on stdout for tables; 160 columns wide when stdout is a pipe or a file (unless
    ``COLUMNS`` says otherwise), so that a table piped to ``grep`` keeps its rows whole."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160
    return console


def error(message: str) -> None:
    """Print ``error: message`` on stderr (``error:`` in red on a terminal)."""
    stderr.print(Text.assemble(("error:", "bold red"), " ", message))


@dataclasses.dataclass
class Report:
    """What :func:`reporting` adds to an error: ``resume``, the id of a recorded run that the
    command started (set once it started), so that a cancelled or failed command says how to
    continue it; ``partial``, an output file left unfinished (``(partial file, target)``), so
    that it says where the results written so far are."""

    resume: str | None = None
    partial: tuple[Path, Path] | None = None

    def hint(self) -> None:
        """Print what is left and how to go on, after the error message."""
        if self.partial is not None:
            partial, target = self.partial
            kept = "left as it was" if target.exists() else "not written"
            stderr.print(f"the results written so far are in {partial}; {target} is {kept}")
        if self.resume is not None:
            stderr.print(f"run {self.resume} stopped; legato resume {self.resume} continues it")


@contextmanager
def reporting(ctx: typer.Context) -> Iterator[Report]:
    """Turn what a command raises into a message and an exit code (see :mod:`legato.cli`)."""
    debug = settings(ctx).debug
    report = Report()
    try:
        yield report
    except (typer.Exit, typer.Abort, TyperException):
        raise
    except Terminated:
        if debug:
            traceback.print_exc()
        report.hint()
        stderr.print("terminated (SIGTERM)", style="yellow")
        raise typer.Exit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        report.hint()
        stderr.print("cancelled", style="yellow")  # the last line, whatever came before
        raise typer.Exit(130) from None
    except BrokenPipeError:  # the reader of stdout went away (`legato map ... | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(1) from None
    except OSError as exc:  # a file the command line names: data, output, events
        if debug:
            traceback.print_exc()
        error(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        report.hint()
        raise typer.Exit(1) from None
    except Exception as exc:
        if debug:
            traceback.print_exc()
        usage = isinstance(exc, UsageError | SpecError)
        if isinstance(exc, LegatoError | UsageError):
            error(str(exc))
        else:
            hint = "" if debug else " (legato --debug ... shows the traceback)"
            error(f"{type(exc).__name__}: {exc}{hint}")
        report.hint()
        raise typer.Exit(2 if usage else 1) from None
