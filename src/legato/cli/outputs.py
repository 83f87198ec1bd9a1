"""Where ``legato map`` and ``legato resume`` write their results: never over an input, never
half a file in place of a whole one.

- **An output is never an input.** ``-o`` or ``--events`` naming the data file (the same path, a
  hard link to it, or a symbolic link to it) is refused before any file is opened: opening it
  for writing would empty the items before they were read. :func:`refuse_overwriting` says so
  (a usage error, exit 2) and nothing is touched.
- **Written beside, then renamed.** ``-o FILE`` is written to ``FILE.partial`` in the same
  directory (its parent directories are created) and renamed over ``FILE`` once every item is
  written (:class:`Replacement`). A run that stops before its end (an error, ``--on-error
  raise``, Ctrl-C, SIGTERM, a crash) leaves ``FILE`` as it was; the lines written so far stay
  in ``FILE.partial``, and the run store holds those results too, so ``legato resume RUN``
  writes ``FILE`` whole. The next run to the same output replaces ``FILE.partial``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from legato.cli.common import UsageError

PARTIAL = ".partial"  # the suffix of the file an output is written to until it is complete


def partial_path(target: Path) -> Path:
    """Where the results for ``target`` are written until they are complete."""
    return target.with_name(target.name + PARTIAL)


def same_file(one: Path, other: Path) -> bool:
    """Whether two paths name one file: equal once resolved (symbolic links followed), or the
    same inode on the same device (hard links). A path that does not exist names no file yet,
    so it is the same only when it resolves to the same place."""
    if one.resolve() == other.resolve():
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:  # one of them does not exist
        return False


def refuse_overwriting(data: str, outputs: dict[str, Path | None]) -> None:
    """Raise :class:`UsageError` when an output (``{"-o": path, ...}``) would overwrite the data
    file ``data`` (``-``: stdin, never overwritten), or is a directory."""
    for option, path in outputs.items():
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"{option} {path}: is a directory; give a file path, e.g. "
                             f"{option} {path / 'out.jsonl'}")
        if data == "-":
            continue
        real = replaceable(path) if option == "-o" else None
        for written in (path,) if real is None else (path, partial_path(real)):
            if same_file(written, Path(data)):
                raise UsageError(
                    f"{option} {path} would overwrite the data file {data}, which it is "
                    f"(or links to); write the results elsewhere, e.g. {option} "
                    f"{_elsewhere(path)}")


def _elsewhere(path: Path) -> Path:
    """A suggested output path beside ``path``: ``data.jsonl`` -> ``data.out.jsonl``."""
    return path.with_name(f"{path.stem}.out{path.suffix}")


_SPECIAL = ("dev", "proc")  # top directories of device and process files: never replaced


def _special(path: Path) -> bool:
    """Whether an absolute path is under ``/dev`` or ``/proc``."""
    return len(path.parts) > 1 and path.parts[1] in _SPECIAL


def replaceable(target: Path) -> Path | None:
    """The regular file that writing ``target`` replaces (symbolic links followed), or None when
    ``target`` is not one (a device, ``/dev/stdout``, a pipe): that is written directly."""
    real = target.resolve()
    if _special(Path(os.path.abspath(target))) or _special(real):
        return None
    if real.exists() and not real.is_file():
        return None
    return real


class Replacement:
    """An output file written whole or not at all: :meth:`open` gives the stream to
    ``target.partial`` (parent directories created), :meth:`commit` renames it over ``target``
    (after flushing it to disk); :meth:`close` without a commit keeps the partial file and leaves
    ``target`` untouched.

    A symbolic link stays a link: the file it points to is the one replaced. A target that is
    not a regular file (``/dev/stdout``, anything under ``/dev`` or ``/proc``, a named pipe)
    cannot be replaced: it is written directly, and ``partial`` is None.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self._real = replaceable(target)
        self.partial = None if self._real is None else partial_path(self._real)
        self._stream: IO[str] | None = None

    @property
    def stream(self) -> IO[str]:
        """The partial file, open for writing (after :meth:`open`)."""
        assert self._stream is not None, "open() first"
        return self._stream

    def open(self) -> IO[str]:
        """Create the parent directories and open the partial file for writing."""
        written = self.target if self.partial is None else self.partial
        written.parent.mkdir(parents=True, exist_ok=True)
        self._stream = open(written, "w", encoding="utf-8")  # noqa: SIM115 (see close)
        return self._stream

    def commit(self) -> None:
        """Every result is written: put the file in place of ``target`` in one rename, once its
        bytes are on disk (so that a crash never leaves an empty ``target``)."""
        stream = self.stream
        if self.partial is None:
            stream.close()
            return
        stream.flush()
        os.fsync(stream.fileno())
        stream.close()
        assert self._real is not None
        os.replace(self.partial, self._real)

    def close(self) -> None:
        """Close the partial file (kept, unless committed)."""
        if self._stream is not None and not self._stream.closed:
            self._stream.close()
