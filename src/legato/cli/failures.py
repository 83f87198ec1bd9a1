"""How ``legato show`` sums up a run's failures: one group per node, exception type and raising
line, with a count and a few examples, instead of one line per failed item.

The raising line is the innermost frame of the recorded traceback that is in the user's code:
not in legato itself, not in Python's standard library, not in an installed package
(``site-packages``), not frozen or generated code (``<frozen ...>``, ``<string>``). A failure
whose traceback has no such frame is placed at its innermost frame of code with no file (a
function a ``process`` worker received by value runs as ``<dynamic-code>``, with its file's line
numbers: ``line 6 in boom``), else outside legato (a library), else anywhere (legato itself: a
batch that returned the wrong number of results). One with no traceback at all (its inputs did
not fit; a cancelled call) has no place. Failed attempts that were tried again are counted in
their group too, as retried.
"""

from __future__ import annotations

import os
import re
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

BEFORE_NODES = "(before any node)"  # where an item failed that no node ran for (its inputs)
EXAMPLES = 3  # examples shown per group
_NODE_PREFIX = re.compile(r"^node '[^']*'(?: \([^)]*\))? failed on item \d+, attempt \d+: ")
_ITEM_PREFIX = re.compile(r"^item \d+: ")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<function>.+))?')
_EXCEPTION = re.compile(r"^(?:\w+\.)*(?P<type>[A-Z]\w*)(?::\s|$)")  # pkg.mod.Error: text
_INDEX = re.compile(r"\[\d+\]")


def node_name(path: str) -> str:
    """A node execution's path with its map indices folded: ``each[3]/score`` -> ``each[*]/score``,
    so the executions of one node across map elements are counted together."""
    return _INDEX.sub("[*]", path)


def headline(error: str | None) -> str:
    """The first line of an error message, without what every item's copy of it differs in
    (``node 'x' (f.py:3) failed on item 7, attempt 1: ``, ``item 7: ``)."""
    lines = (error or "").strip().splitlines()
    if not lines:
        return "(no error recorded)"
    return _ITEM_PREFIX.sub("", _NODE_PREFIX.sub("", lines[0]))


@cache
def _legato_root() -> str:
    """legato's own package directory."""
    return str(Path(__file__).resolve().parents[1]) + os.sep


@cache
def _library_roots() -> tuple[str, ...]:
    """Directories whose code is not the user's: legato's package, the standard library and the
    installed packages of this interpreter."""
    paths = sysconfig.get_paths()
    found = {os.path.realpath(paths[key]).rstrip(os.sep) + os.sep
             for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return tuple(sorted(found | {_legato_root()}))


def is_user_code(path: str) -> bool:
    """Whether the frame's file is the user's (see the module docstring); paths recorded on
    another machine are judged by their look (``site-packages``, ``dist-packages``)."""
    if path.startswith("<"):
        return False
    parts = Path(path).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not path.startswith(_library_roots())


@dataclass(frozen=True, slots=True)
class Frame:
    """One ``File "...", line N, in function`` line of a traceback."""

    file: str
    line: int
    function: str

    def place(self, relative_to: Path | None) -> str:
        """``file:line`` (relative to ``relative_to`` when under it); for code with no file
        (a function sent by value to a worker process runs as ``<dynamic-code>``, with the
        line numbers of its file), ``line N in function``."""
        if self.file.startswith("<"):
            return f"line {self.line} in {self.function}" if self.function else self.file
        path = Path(self.file)
        if relative_to is not None and path.is_relative_to(relative_to):
            path = path.relative_to(relative_to)
        return f"{path}:{self.line}"


def frames(traceback: str | None) -> list[Frame]:
    """The frames of a traceback's text, outermost first (chained tracebacks one after the
    other, as printed)."""
    found = []
    for text in (traceback or "").splitlines():
        match = _FRAME.match(text)
        if match:
            found.append(Frame(match["file"], int(match["line"]), match["function"] or ""))
    return found


def raising_place(traceback: str | None, *, relative_to: Path | None = None) -> str:
    """Where the failure was raised (module docstring), ``""`` when the traceback has no frame:
    the innermost frame in the user's files; else in code with no file (``<dynamic-code>``,
    ``<string>``); else outside legato (a library); else the innermost frame."""
    found = frames(traceback)
    if not found:
        return ""
    choices = (
        [f for f in found if is_user_code(f.file)],
        [f for f in found if f.file.startswith("<") and not f.file.startswith("<frozen")],
        [f for f in found if not f.file.startswith(_legato_root())],
        found,
    )
    return next(choice for choice in choices if choice)[-1].place(relative_to)


def exception_type(error: str | None, traceback: str | None) -> str:
    """The failure's exception class name, from the traceback's last line (``ValueError: ...``)
    or else the message's first line; ``""`` when neither names one."""
    candidates = []
    if traceback and traceback.strip():
        candidates.append(traceback.strip().splitlines()[-1])
    if error:
        candidates.append(headline(error))
    for text in candidates:
        match = _EXCEPTION.match(text)
        if match:
            return match["type"]
    return ""


def message(error: str | None, kind: str) -> str:
    """The failure's message, its exception type taken off (the group names it)."""
    text = headline(error)
    return text.removeprefix(f"{kind}: ") if kind else text


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt as grouped: the node, the item, how it ended (``failed``: the item's
    last attempt; ``retried``: tried again), its error message and traceback (either may be
    missing)."""

    node: str
    item: int
    outcome: str
    error: str | None
    traceback: str | None


@dataclass(slots=True)
class FailureGroup:
    """Failures of one node with one exception type raised at one place.

    ``items``: the items whose last attempt failed this way (sorted); ``retried``: attempts
    that failed this way and were tried again; ``examples``: up to :data:`EXAMPLES` (item,
    message) pairs, failed items first, then retried ones, each message once.
    """

    node: str
    kind: str
    place: str
    items: list[int] = field(default_factory=list)
    retried: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def describe(self) -> str:
        """``ValueError at agent.py:31``: what was raised, where."""
        what = self.kind or "error"
        return f"{what} at {self.place}" if self.place else what


def group_failures(failures: Iterable[Failure], *, relative_to: Path | None = None
                   ) -> list[FailureGroup]:
    """Failures grouped by (node, exception type, raising place), most failed items first."""
    groups: dict[tuple[str, str, str], FailureGroup] = {}
    ordered = sorted(failures, key=lambda f: (f.outcome != "failed", f.item))
    for failure in ordered:
        kind = exception_type(failure.error, failure.traceback)
        place = raising_place(failure.traceback, relative_to=relative_to)
        key = (failure.node, kind, place)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(failure.node, kind, place)
        if failure.outcome == "failed":
            group.items.append(failure.item)
        else:
            group.retried += 1
        said = message(failure.error, kind)
        if len(group.examples) < EXAMPLES and all(said != m for _, m in group.examples):
            group.examples.append((failure.item, said))
    for group in groups.values():
        group.items.sort()
    return sorted(groups.values(), key=lambda g: (
        g.node == BEFORE_NODES, -len(g.items), -g.retried, g.items[:1], g.node, g.kind, g.place))
