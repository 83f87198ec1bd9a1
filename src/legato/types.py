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
# Values against annotations (the pipeline's outputs, at run time)

_SAMPLE = 3  # elements of a container checked from each end: cheap on a list of millions


def mismatch(value: object, tp: Any) -> str | None:
    """Why ``value`` does not fit annotation ``tp`` (``"int 3"``, ``"str 'a' at [2]"``), or
    None when it fits or cannot be told cheaply.

    The rules of :func:`compatible`, applied to a value: ``Any``/``object``/TypeVars and
    annotations that cannot be checked at run time (a string left unresolved, a Protocol that is
    not ``runtime_checkable``, ``Callable[...]``'s signature) accept anything; a Union needs one
    member to fit; ``Literal`` needs an equal value; a class needs an instance, numbers by their
    ABC (an ``int`` or ``numpy.int64`` fits ``float``; a ``bool`` fits ``int``, as in Python).
    Containers are checked for their outer class, then a sample: the first and last
    ``_SAMPLE`` elements of a sequence, the first ``_SAMPLE`` of a set or mapping (keys and
    values), every position of a fixed ``tuple[A, B]``. Iterators are never consumed. A
    TypedDict is checked as a dict; ``NDArray[...]`` as an ndarray (dtype and shape not).
    """
    return _mismatch(value, tp, "")


def _describe(value: object, where: str) -> str:
    if value is None:
        got = "None"
    elif isinstance(value, bool | int | float | str | bytes):
        got = f"{type(value).__name__} {value!r:.60}"
    else:
        got = type(value).__name__
    return f"{got} at {where.strip()}" if where else got


def _mismatch(value: object, tp: Any, where: str) -> str | None:
    tp = _strip(tp)
    if is_any(tp) or isinstance(tp, str | typing.ForwardRef):
        return None
    if tp is None or tp is NoneType:
        return None if value is None else _describe(value, where)
    if _is_union(tp):
        members = get_args(tp)
        if any(_mismatch(value, member, where) is None for member in members):
            return None
        return _describe(value, where)
    origin = get_origin(tp)
    if origin is Literal:
        fits = any(value == choice and type(value) is type(choice) for choice in get_args(tp))
        return None if fits else _describe(value, where)
    numpy = _numpy_origin(tp)
    if numpy is not None:
        return None if isinstance(value, numpy) else _describe(value, where)
    if origin is None:
        return _class_mismatch(value, tp, where)
    if not isinstance(origin, type):
        return None  # a special form this check does not know: let it pass
    if _class_mismatch(value, origin, where) is not None:
        return _describe(value, where)
    return _arguments_mismatch(value, origin, get_args(tp), where)


def _class_mismatch(value: object, tp: Any, where: str) -> str | None:
    if not isinstance(tp, type):
        return None
    if typing.is_typeddict(tp):
        tp = dict
    number = _NUMBERS.get(tp)
    if number is not None:
        import numbers

        fits = isinstance(value, getattr(numbers, number))
    else:
        try:
            fits = isinstance(value, tp)
        except TypeError:  # a Protocol that is not runtime_checkable, a generic alias
            return None
    return None if fits else _describe(value, where)


_NUMBERS: dict[type, str] = {int: "Integral", float: "Real", complex: "Complex"}


def _arguments_mismatch(
    value: object, origin: type, args: tuple[Any, ...], where: str
) -> str | None:
    if not args or isinstance(value, collections.abc.Iterator):
        return None
    if origin is type:
        wanted = _strip(args[0])
        if isinstance(value, type) and isinstance(wanted, type) and not issubclass(value, wanted):
            return f"type {value.__name__}" + (f" at {where.strip()}" if where else "")
        return None
    if isinstance(value, tuple) and issubclass(origin, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return _sample(value, args[0], where)
        if args == ((),):  # tuple[()]
            args = ()
        if len(value) != len(args):
            return f"tuple of {len(value)} (expected {len(args)})" + (
                f" at {where.strip()}" if where else "")
        for index, (part, arg) in enumerate(zip(value, args, strict=True)):
            problem = _mismatch(part, arg, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, collections.abc.Mapping) and len(args) == 2:
        for count, (key, item) in enumerate(value.items()):
            if count == _SAMPLE:
                break
            problem = (_mismatch(key, args[0], f"{where} key {key!r:.30}")
                       or _mismatch(item, args[1], f"{where}[{key!r:.30}]"))
            if problem is not None:
                return problem
        return None
    if isinstance(value, str | bytes | bytearray) or len(args) != 1:
        return None
    if isinstance(value, collections.abc.Sequence):
        return _sample(value, args[0], where)
    if isinstance(value, collections.abc.Set):
        for count, item in enumerate(value):
            if count == _SAMPLE:
                break
            problem = _mismatch(item, args[0], f"{where} element")
            if problem is not None:
                return problem
    return None


def _sample(value: collections.abc.Sequence[Any], tp: Any, where: str) -> str | None:
    """The first and last ``_SAMPLE`` elements of a sequence against ``tp``."""
    size = len(value)
    indices = range(size) if size <= 2 * _SAMPLE else [
        *range(_SAMPLE), *range(size - _SAMPLE, size)]
    for index in indices:
        problem = _mismatch(value[index], tp, f"{where}[{index}]")
        if problem is not None:
            return problem
    return None


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
