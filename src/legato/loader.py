"""Find a pipeline from a ``FILE:PIPELINE`` or ``package.module:PIPELINE`` spec.

How a spec is read:

1. The part after the last ``:`` names the pipeline: the module attribute of that name, else
   the one pipeline whose ``name`` it is. Without it, the module's only pipeline is taken.
2. The part before is a file when it ends in ``.py``, contains a ``/``, or exists on disk; else
   a dotted module path, imported with the current directory on ``sys.path``.
3. A file is executed as a module under a name unique to its absolute path (so two files both
   called ``agent.py`` never collide), with its own directory first on ``sys.path`` (so its
   sibling imports work, here and in worker processes, which inherit ``sys.path``). Its
   functions and classes are pickled by value (``cloudpickle.register_pickle_by_value``), since
   a worker process cannot import a module that exists only under that unique name.

Errors: :class:`SpecError` when the spec names nothing loadable (no such file or module, no such
pipeline, not a pipeline; the message lists the pipelines there are), :class:`LoadError` when the
file itself fails while it is imported (syntax error, failed import: the message gives file:line).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from legato.component import Component
from legato.errors import LoadError, SpecError
from legato.pipeline import Pipeline


def load(spec: str) -> Pipeline:
    """The pipeline named by ``spec`` (``path/to/file.py:name``, ``package.module:name``)."""
    where, name = split_spec(spec)
    module = load_module(where)
    return pick(module, name, where=where)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"a/b.py:agent"`` -> ``("a/b.py", "agent")``; ``"a/b.py"`` -> ``("a/b.py", None)``."""
    where, colon, name = spec.rpartition(":")
    if not colon:
        where, name = spec, ""
    if not where:
        raise SpecError(f"expected FILE:PIPELINE or package.module:PIPELINE, got {spec!r}")
    if name and not name.isidentifier():
        raise SpecError(
            f"{name!r} in {spec!r} is not a Python name; expected FILE:PIPELINE, e.g. "
            "pipelines.py:agent"
        )
    return where, name or None


def load_module(where: str) -> ModuleType:
    """Import a ``.py`` file by its path, or a module by its dotted name."""
    if _is_path(where):
        return _load_file(Path(where))
    return _load_dotted(where)


def pipelines_in(module: ModuleType) -> dict[str, Pipeline]:
    """The module's attributes that are pipelines, by attribute name, in definition order."""
    return {key: value for key, value in vars(module).items() if isinstance(value, Pipeline)}


def pick(module: ModuleType, name: str | None, *, where: str) -> Pipeline:
    """The pipeline called ``name`` in ``module`` (the only one when ``name`` is None)."""
    found = pipelines_in(module)
    if name is None:
        if len(found) == 1:
            return next(iter(found.values()))
        raise SpecError(f"{where} defines {_listing(found)}; name one: {where}:PIPELINE")
    value = getattr(module, name, None)
    if isinstance(value, Pipeline):
        return value
    if value is not None:
        raise SpecError(
            f"'{name}' in {where} is {_kind(value)}, not a pipeline (declare it with "
            f"@legato.pipeline); {where} defines {_listing(found)}"
        )
    by_name = [p for p in found.values() if p.name == name]
    if len(by_name) == 1:
        return by_name[0]
    close = difflib.get_close_matches(name, list(found), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise SpecError(f"{where} has no pipeline '{name}'{hint}; it defines {_listing(found)}")


# -- importing ----------------------------------------------------------------------------------


def _is_path(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where or os.path.exists(where)


def module_name(path: Path) -> str:
    """The unique module name a file is imported under: its stem and a hash of its path."""
    stem = re.sub(r"\W", "_", path.stem)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    return f"legato_file_{stem}_{digest}"


def _load_file(given: Path) -> ModuleType:
    if not given.exists():
        raise SpecError(f"no such file: {given}")
    if given.is_dir():
        raise SpecError(f"{given} is a directory; expected a .py file")
    path = given.resolve()
    name = module_name(path)
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot import {given}: not a Python file")
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses and pickling look the module up
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        cloudpickle.unregister_pickle_by_value(module)
        if isinstance(exc, Exception):
            raise LoadError(_failure(exc, path, given)) from exc
        raise
    return module


def _load_dotted(where: str) -> ModuleType:
    if not all(part.isidentifier() for part in where.split(".")):
        raise SpecError(f"no such file, and not a module name: {where}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is not None and where.startswith(exc.name):
            raise SpecError(f"no such file or module: {where}") from exc
        raise LoadError(f"cannot import {where}: {_failure(exc, None, None)}") from exc
    except Exception as exc:
        raise LoadError(f"cannot import {where}: {_failure(exc, None, None)}") from exc


def _failure(exc: Exception, path: Path | None, given: Path | None) -> str:
    """``file.py:LINE: Type: message``, at the deepest line of the user's file that failed."""
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        shown = given if given is not None and exc.filename == str(path) else exc.filename
        text = f"\n    {exc.text.strip()}" if exc.text else ""
        return f"{shown}:{exc.lineno}: {type(exc).__name__}: {exc.msg}{text}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if path is not None and f.filename == str(path)]
    deepest = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    if own:
        inner = "" if own[-1] is frames[-1] else f" (raised at {deepest})"
        return f"{given}:{own[-1].lineno}: {what}{inner}"
    return f"{deepest}: {what}" if deepest else what


def _kind(value: object) -> str:
    if isinstance(value, Component):
        return f"a component ('{value.name}')"
    if isinstance(value, ModuleType):
        return "a module"
    article = "an" if type(value).__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {type(value).__name__}"


def _listing(found: dict[str, Pipeline]) -> str:
    if not found:
        return "no pipelines (declare one with @legato.pipeline)"
    names = ", ".join(found)
    return f"{len(found)} pipeline{'s' if len(found) != 1 else ''}: {names}"


__all__ = ["LoadError", "SpecError", "load", "load_module", "module_name", "pick",
           "pipelines_in", "split_spec"]
