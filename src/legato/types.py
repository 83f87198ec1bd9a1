"""Port types: when may one port feed another, and how graph inputs are coerced.

``compatible(source, target)`` answers "can a value of type ``source`` always be passed where
``target`` is expected?" by these rules, tried in order:

1. ``Any`` (or an unannotated port, or a TypeVar) on either side: yes.
2. ``Annotated[T, ...]`` is ``T``; ``NewType`` is its supertype.
3. A Union source: every member must fit the target. A Union (or Optional) target: the source
   must fit one member. ``None`` fits only ``None``/Optional.
4. ``Literal[...]`` source: every value must be an instance of the target.
5. Plain classes: subclass (pydantic models and dataclasses included); ``int`` fits ``float`` and
   ``complex`` (the numeric tower of PEP 484).
6. Generics: the origins must fit as classes (``list`` fits ``Sequence``), then the arguments
   pairwise (``list[int]`` fits ``list[float]``; a bare ``list`` fits ``list[T]`` and vice versa).
   ``numpy.typing.NDArray[...]`` is treated as ``numpy.ndarray``.

Coercion (``coerce``) is for graph inputs only, where values come from users, files and the
command line: a value that already is an instance of a plain class passes untouched; otherwise
pydantic (imported lazily) validates it in lax mode, so ``"3"`` becomes ``3`` for an ``int`` port.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from functools import lru_cache
from typing import Any, Literal, Union, get_args, get_origin

_UNION_ORIGINS: tuple[object, ...] = (Union, types.UnionType)
NoneType = type(None)
_ALIAS: Any = getattr(typing, "TypeAliasType", None)  # Python >= 3.12 ``type X = ...``

# PEP 484 numeric tower: an int is acceptable where a float is, and both where complex is.
_PROMOTIONS: dict[type, tuple[type, ...]] = {int: (float, complex), float: (complex,)}


def _strip(tp: Any) -> Any:
    """Remove the wrappers that carry no type information for compatibility."""
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp = get_args(tp)[0]
        elif isinstance(tp, typing.NewType):
            tp = tp.__supertype__
        elif _ALIAS is not None and isinstance(tp, _ALIAS):
            tp = tp.__value__
        else:
            return tp


def is_any(tp: Any) -> bool:
    """True for annotations that accept and give anything: Any, object, TypeVars, missing hints."""
    tp = _strip(tp)
    return tp is Any or tp is object or isinstance(tp, typing.TypeVar)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in _UNION_ORIGINS


def _class_fits(source: type, target: type) -> bool:
    if source is target:
        return True
    try:
        if issubclass(source, target):
            return True
    except TypeError:
        return False
    return any(_class_fits(promoted, target) for promoted in _PROMOTIONS.get(source, ()))


def _numpy_origin(tp: Any) -> Any:
    """``NDArray[np.float32]`` is ``np.ndarray[Any, dtype[float32]]``: keep the class only."""
    origin = get_origin(tp)
    if origin is not None and getattr(origin, "__module__", "") == "numpy":
        return origin
    return None


def compatible(source: Any, target: Any) -> bool:
    """Can every value of type ``source`` be passed to a port of type ``target``?"""
    source, target = _strip(source), _strip(target)
    if is_any(source) or is_any(target) or source == target:
        return True
    if _is_union(source):
        return all(compatible(member, target) for member in get_args(source))
    if _is_union(target):
        return any(compatible(source, member) for member in get_args(target))
    if source is None or source is NoneType:
        return target is None or target is NoneType
    if get_origin(source) is Literal:
        base = target if isinstance(target, type) else get_origin(target)
        if not isinstance(base, type):
            return False
        return all(isinstance(value, base) for value in get_args(source))
    if get_origin(target) is Literal:
        return False

    src_origin = _numpy_origin(source) or get_origin(source) or source
    tgt_origin = _numpy_origin(target) or get_origin(target) or target
    if not (isinstance(src_origin, type) and isinstance(tgt_origin, type)):
        return False
    if not _class_fits(src_origin, tgt_origin):
        return False
    if _numpy_origin(source) is not None or _numpy_origin(target) is not None:
        return True  # array shape/dtype parameters are not checked statically
    return _arguments_fit(src_origin, get_args(source), tgt_origin, get_args(target))


def _arguments_fit(
    src_origin: type, src_args: tuple[Any, ...], tgt_origin: type, tgt_args: tuple[Any, ...]
) -> bool:
    if not src_args or not tgt_args:
        return True  # a bare generic on either side is taken as parametrised by Any
    if issubclass(tgt_origin, tuple) and issubclass(src_origin, tuple):
        if len(tgt_args) == 2 and tgt_args[1] is Ellipsis:
            items = src_args[:1] if (len(src_args) == 2 and src_args[1] is Ellipsis) else src_args
            return all(compatible(item, tgt_args[0]) for item in items)
        if len(src_args) != len(tgt_args):
            return False
        return all(compatible(s, t) for s, t in zip(src_args, tgt_args, strict=True))
    if issubclass(tgt_origin, collections.abc.Mapping) and len(src_args) == len(tgt_args) == 2:
        return compatible(src_args[0], tgt_args[0]) and compatible(src_args[1], tgt_args[1])
    if issubclass(tgt_origin, collections.abc.Iterable) and len(tgt_args) == 1:
        return compatible(src_args[0], tgt_args[0])
    if len(src_args) != len(tgt_args):
        return False
    return all(compatible(s, t) for s, t in zip(src_args, tgt_args, strict=True))


def list_item(tp: Any) -> Any | None:
    """The element type of a list-like annotation (``list[str]`` -> ``str``), or None if it is
    not one. ``Any`` gives ``Any``: anything might be a list."""
    tp = _strip(tp)
    if is_any(tp):
        return Any
    origin = get_origin(tp) or tp
    is_sequence = isinstance(origin, type) and issubclass(origin, collections.abc.Sequence)
    if is_sequence and origin is not str:
        args = get_args(tp)
        return args[0] if args else Any
    return None


def name(tp: Any) -> str:
    """A short readable name for an annotation: ``list[str]``, ``Optional[int]``, ``Audio``."""
    tp = _strip(tp)
    if tp is Any:
        return "Any"
    if tp is NoneType or tp is None:
        return "None"
    if _is_union(tp):
        return " | ".join(name(member) for member in get_args(tp))
    origin = get_origin(tp)
    if origin is Literal:
        return "Literal[" + ", ".join(repr(v) for v in get_args(tp)) + "]"
    if origin is not None:
        args = get_args(tp)
        origin_name = getattr(origin, "__name__", repr(origin))
        if not args:
            return origin_name
        return f"{origin_name}[{', '.join('...' if a is Ellipsis else name(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp)


# ---------------------------------------------------------------------------------------------
# Coercion of graph inputs


def _fast_isinstance(value: object, tp: Any) -> bool:
    """A cheap exact answer where one exists, so common inputs never import pydantic."""
    tp = _strip(tp)
    if is_any(tp):
        return True
    if isinstance(tp, type) and get_origin(tp) is None:
        if tp is float and type(value) is int:
            return False  # let pydantic turn it into a float
        return isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    return False


@lru_cache(maxsize=512)
def _adapter(tp: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter

    try:
        return TypeAdapter(tp, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # pydantic refuses config on its own models and dataclasses
        return TypeAdapter(tp)


def coerce(value: object, tp: Any) -> object:
    """Validate ``value`` against annotation ``tp`` and return it, converted where lax rules allow.

    Raises ``ValueError`` with pydantic's explanation when the value cannot fit.
    """
    if _fast_isinstance(value, tp):
        return value
    from pydantic import ValidationError

    try:
        return _adapter(tp).validate_python(value)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        got = f"{type(value).__name__} {value!r:.80}"
        raise ValueError(f"expects {name(tp)}, got {got}: {reasons}") from None
    except TypeError as exc:  # an annotation pydantic cannot build a schema for
        raise ValueError(f"expects {name(tp)}, cannot validate: {exc}") from None
