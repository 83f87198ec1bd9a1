"""Fingerprints of code: what a component's cache key and a run's graph fingerprint hold of it.

:func:`code_digest` is a digest of a function's or a class's *code*, not of its place, so the
same code gives the same digest from any directory, any checkout, and whether its file was
loaded by path (``legato map file.py:p``) or imported as a module. It covers:

1. the callable's source, parsed with :mod:`ast` and dumped without comments, docstrings, line
   numbers, the file's path or the module's name: changing a comment or a docstring, moving the
   file or importing it under another name keeps the digest; changing the body changes it.
   ``@legato.component(...)`` is left out of the source (its options that can change a result,
   ``version`` and ``weights``, are hashed by the component itself; ``cpus=`` and the like
   never change a result); any other decorator stays in.
2. the same, for every function and class *defined in the same module* that the code names,
   transitively (a helper's own helpers too), each once. A helper imported from another module,
   a module-level constant and installed packages are not part of it: give ``version=`` when
   their change should invalidate the cache.
3. where no source can be read (a function typed at a REPL or built by ``exec``), its bytecode
   and constants instead.

Part 2 is found by name: every name the code reads that is, in the callable's module globals,
a function or class whose ``__module__`` is that module (legato's wrappers are looked through
with ``__wrapped__``). A local variable that shadows such a global name adds that global to the
digest too: harmless (a needless miss at worst), never a wrong hit.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["code_digest", "normalised_source"]

_OWN_DECORATORS = "legato.component"  # the module whose decorators carry options, not code


def code_digest(target: Callable[..., Any] | type) -> str:
    """A hex digest of ``target``'s normalised source and of the same-module functions and
    classes it names, transitively (see the module docstring)."""
    digest = hashlib.sha256()
    for label, text in _closure(target):
        digest.update(f"{label}\0{text}\0".encode())
    return digest.hexdigest()[:16]


def normalised_source(target: Callable[..., Any] | type) -> str | None:
    """``target``'s source as a dump of its syntax tree (no comments, docstrings, line numbers,
    nor legato's own decorator); None when no source can be read or parsed."""
    tree = _tree(target)
    return None if tree is None else ast.dump(tree)


def _closure(target: Callable[..., Any] | type) -> Iterator[tuple[str, str]]:
    """(label, normalised text) of ``target``, then of each same-module callable it reaches."""
    module = getattr(target, "__module__", None)
    seen: set[int] = {id(target)}
    todo: list[Any] = [target]
    found: list[tuple[str, str]] = []
    while todo:
        current = todo.pop()
        tree = _tree(current)
        label = getattr(current, "__qualname__", type(current).__name__)
        if tree is None:
            found.append((label, _bytecode(current)))
            continue
        found.append((label, ast.dump(tree)))
        if module is None:
            continue
        namespace = _globals(current)
        for name in sorted(_names(tree)):
            value = _same_module(namespace.get(name), module)
            if value is not None and id(value) not in seen:
                seen.add(id(value))
                todo.append(value)
    yield found[0]
    yield from sorted(found[1:])


def _same_module(value: Any, module: str) -> Any:
    """``value`` (unwrapped) if it is a function or class defined in ``module``, else None."""
    if value is None:
        return None
    try:
        wrapped = getattr(value, "__wrapped__", None)  # a Component, a functools.wraps decorator
        if wrapped is not None and not isinstance(value, type):
            value = wrapped
        if not (inspect.isfunction(value) or inspect.isclass(value)):
            return None
        return value if getattr(value, "__module__", None) == module else None
    except Exception:  # a proxy whose attributes raise: not code of this module
        return None


def _globals(target: Any) -> dict[str, Any]:
    found = getattr(target, "__globals__", None)
    if isinstance(found, dict):
        return found
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    return vars(module) if module is not None else {}


def _names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _tree(target: Any) -> ast.AST | None:
    """The definition's syntax tree, normalised: docstrings and legato's decorator removed."""
    try:
        source = inspect.getsource(target)
    except Exception:  # OSError, TypeError; a fingerprint never fails a run
        return None
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:  # a lambda's line, or indentation dedent cannot undo
        return None
    namespace = _globals(target)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = [d for d in node.decorator_list
                                   if not _is_own_decorator(d, namespace)]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _is_own_decorator(node: ast.expr, namespace: dict[str, Any]) -> bool:
    """True for ``@component``, ``@lg.component(...)``: a decorator from legato.component."""
    if isinstance(node, ast.Call):
        node = node.func
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in namespace:
        return False
    value: Any = namespace[node.id]
    try:
        for attr in reversed(chain):
            value = getattr(value, attr, None)
        return getattr(value, "__module__", None) == _OWN_DECORATORS
    except Exception:  # an object whose attributes raise: keep the decorator in the source
        return False


def _bytecode(target: Any) -> str:
    """Code without source (a REPL, ``exec``): its bytecode and constants, recursively; no file
    names or line numbers. A class without source counts by its name only."""
    code = getattr(target, "__code__", None)
    if not isinstance(code, types.CodeType):
        return getattr(target, "__qualname__", repr(type(target)))
    return _code_text(code)


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{code.co_names}|{consts}"
