"""Every exception a user can meet is in errors.py's drawn tree: the package is walked, every
exception class it defines must be defined in ``legato.errors`` and drawn in its docstring,
under the base it really has."""

from __future__ import annotations

import builtins
import gc
import importlib
import inspect
import pkgutil
import re

import pytest

import legato
from legato import errors

# Modules that cannot be imported on their own: the CLI's entry point runs the app on import;
# Alembic's env.py runs only inside an Alembic migration.
NOT_IMPORTABLE = {"legato.cli.__main__", "legato.store.migrations.env"}


def every_module() -> list[str]:
    names = ["legato"]
    for info in pkgutil.walk_packages(legato.__path__, "legato."):
        if info.name not in NOT_IMPORTABLE:
            names.append(info.name)
    return names


def legato_exceptions() -> set[type[BaseException]]:
    """Every exception class defined in legato: found in the modules' namespaces and, for ones
    defined inside functions or classes, among the subclasses of every exception class."""
    found: set[type[BaseException]] = set()
    for name in every_module():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, BaseException):
                found.add(value)
    stack: list[type[BaseException]] = [BaseException]
    seen: set[type[BaseException]] = set()
    while stack:
        kind = stack.pop()
        if kind in seen:
            continue
        seen.add(kind)
        found.add(kind)
        stack.extend(kind.__subclasses__())
    return {kind for kind in found
            if kind.__module__ == "legato" or kind.__module__.startswith("legato.")}


def drawing() -> dict[str, str | None]:
    """The trees drawn in errors.py's docstring: each name, and the name it is drawn under
    (None for a root). A name's depth is its column: four per level."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n", 1)[1]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        if line and not line.startswith(" "):
            break  # the end of the literal block
        match = re.match(r"^([ │├└─]*)([A-Z]\w+)\s{2,}\S", line)
        if match is None:
            continue  # a blank line, or a description's continuation
        depth = len(match.group(1)) // 4
        name = match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def drawn_here() -> list[str]:
    """The drawn names that are legato's (a root from Python, like KeyboardInterrupt, is not)."""
    return sorted(name for name in drawing() if not hasattr(builtins, name))


def test_the_drawing_is_read_as_a_tree() -> None:
    drawn = drawing()
    assert drawn["LegatoError"] is None
    assert drawn["KeyboardInterrupt"] is None
    assert drawn["Terminated"] == "KeyboardInterrupt"
    assert drawn["RemoteTraceback"] == "LegatoError"
    assert drawn["TracingError"] == "GraphError"
    assert drawn["ComponentTimeout"] == "ComponentError"
    assert drawn["SpecError"] == "LoadError"
    assert len(drawn) >= 20


def test_every_exception_class_in_legato_is_defined_in_errors_py() -> None:
    elsewhere = sorted(f"{kind.__module__}.{kind.__qualname__}" for kind in legato_exceptions()
                       if kind.__module__ != "legato.errors")
    assert elsewhere == [], ("define these in legato/errors.py (re-export them where they are "
                             "raised) and draw them in its docstring")


def test_every_exception_class_in_legato_is_drawn() -> None:
    drawn = drawing()
    missing = sorted(kind.__qualname__ for kind in legato_exceptions()
                     if kind.__qualname__ not in drawn)
    assert missing == [], "draw these in errors.py's docstring tree"


@pytest.mark.parametrize("name", drawn_here())
def test_each_drawn_error_is_in_errors_py_under_the_base_drawn(name: str) -> None:
    kind = getattr(errors, name)
    assert inspect.isclass(kind)
    assert issubclass(kind, BaseException)
    assert kind.__module__ == "legato.errors"
    assert name in errors.__all__
    parent = drawing()[name]
    if parent is None:
        assert name == "LegatoError"
    else:
        assert parent in [base.__name__ for base in kind.__bases__]


@pytest.mark.parametrize("name", drawn_here())
def test_each_drawn_error_says_who_raises_it(name: str) -> None:
    doc = inspect.getdoc(getattr(errors, name)) or ""
    assert len(doc) > 40, f"{name} needs a docstring: who raises it, when, what to do"


@pytest.mark.parametrize(("where", "name"), [
    ("legato.backends.workers", "WorkerDied"),
    ("legato.backends.workers", "RemoteTraceback"),
    ("legato.values", "Unstorable"),
    ("legato.testing.simulate", "SimulationStalled"),
    ("legato.cli", "UsageError"),
    ("legato.cli.common", "UsageError"),
    ("legato.cli.lines", "Stopped"),
    ("legato.cli.common", "Terminated"),
    ("legato", "WorkerDied"),
    ("legato", "DeadlineExceeded"),
    ("legato", "OutputError"),
])
def test_errors_moved_to_errors_py_keep_their_old_import_paths(where: str, name: str) -> None:
    assert getattr(importlib.import_module(where), name) is getattr(errors, name)


def test_a_class_defined_elsewhere_would_be_found() -> None:
    """The walk sees a class defined inside a function of a legato module (as a new one would
    be), so the checks above are not vacuous."""
    namespace: dict[str, object] = {"__name__": "legato.somewhere"}
    exec("class Strayed(Exception):\n    pass\n", namespace)
    try:
        assert namespace["Strayed"] in legato_exceptions()
    finally:  # leave no stray class for the walks of other tests to find
        namespace.clear()
        gc.collect()
