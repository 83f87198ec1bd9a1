"""Results as JSON: :func:`jsonable` turns what a pipeline returns into plain JSON data."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data.

    Mappings become objects (keys as strings), NamedTuples, dataclasses and pydantic models
    objects of their fields, lists, tuples and sets lists, numpy arrays nested lists and numpy
    scalars numbers, dates ISO strings, enums their values, paths strings; anything else its
    ``repr``.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(jsonable(k)): jsonable(v)
                for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: jsonable(getattr(value, name)) for name in value._fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if type(value).__module__.partition(".")[0] == "numpy" and hasattr(value, "tolist"):
        return jsonable(value.tolist())
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            return dump(mode="json")
        except Exception:
            return repr(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return repr(value)
    return repr(value)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text of ``jsonable(value)``."""
    return json.dumps(jsonable(value), indent=indent, ensure_ascii=False)
