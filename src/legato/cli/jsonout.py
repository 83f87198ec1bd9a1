"""Results as JSON: strict, so that every line ``legato map`` writes is valid JSON.

:class:`Encoder` turns what a pipeline returns into plain JSON data by these rules:

- ``None``, booleans, integers, finite floats and strings are themselves.
- NaN and ±infinity (JSON has no such numbers) become ``null``; a warning says so on stderr,
  once per run (once per :class:`Encoder`), naming where the first one was.
- ``bytes`` (and ``bytearray``, ``memoryview``) become ``{"$bytes": "<base64>"}``
  (:data:`BYTES_KEY`, standard base64 with padding): never guessed as text.
- Mappings are objects (keys that are not strings are written as their JSON text);
  NamedTuples, dataclasses and pydantic models objects of their fields; lists, tuples and
  sets arrays; numpy arrays nested arrays and numpy scalars numbers; dates and times ISO
  strings; enums their values; paths, UUIDs and decimals strings.
- Anything else has no JSON form: :class:`OutputError` names its type and where it is in the
  result (``output.scores[2]: complex has no JSON form``). ``legato map`` writes that item as
  a failure line and goes on with the next one.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from legato.errors import OutputError

BYTES_KEY = "$bytes"


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class Encoder:
    """JSON text of results under the module's rules; warns once about NaN and infinity.

    One per run: ``warn`` (default: a line on stderr) is called the first time a non-finite
    number is written as ``null``, never again by this encoder.
    """

    def __init__(self, *, warn: Callable[[str], None] = _stderr) -> None:
        self._warn = warn
        self._item: int | None = None  # the item being written, for the warning
        self.warned = False

    def jsonable(self, value: Any, where: str = "output") -> Any:
        """``value`` as plain JSON data; raises :class:`OutputError` for a value with no JSON
        form (``where`` names the value in that message and in the NaN warning)."""
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else self._nonfinite(value, where)
        if isinstance(value, Mapping):
            return {k if isinstance(k, str) else self._key(k, where):
                    v if _plain(v) else self.jsonable(v, f"{where}[{k!r:.40}]")
                    for k, v in value.items()}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return {name: self.jsonable(getattr(value, name), f"{where}.{name}")
                    for name in value._fields}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: self.jsonable(getattr(value, f.name), f"{where}.{f.name}")
                    for f in dataclasses.fields(value)}
        if isinstance(value, list | tuple | set | frozenset):  # a path is made only off the
            return [v if _plain(v) else self.jsonable(v, f"{where}[{i}]")  # plain fast path
                    for i, v in enumerate(value)]
        if isinstance(value, bytes | bytearray | memoryview):
            return {BYTES_KEY: base64.b64encode(value).decode("ascii")}
        if type(value).__module__.partition(".")[0] == "numpy" and hasattr(value, "tolist"):
            return self.jsonable(value.tolist(), where)
        dump = getattr(value, "model_dump", None)
        if callable(dump) and not isinstance(value, type):
            try:
                dumped = dump(mode="json")
            except Exception as exc:
                raise OutputError(f"{where}: {type(value).__name__} has no JSON form: "
                                  f"model_dump failed: {exc}", output=where) from exc
            return self.jsonable(dumped, where)
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()
        if isinstance(value, enum.Enum):
            return self.jsonable(value.value, where)
        if isinstance(value, PurePath) or _is_loaded(value, "uuid", "UUID") or \
                _is_loaded(value, "decimal", "Decimal"):
            return str(value)
        raise OutputError(
            f"{where}: {_type_name(value)} has no JSON form; return plain data (numbers, "
            "strings, lists, dicts, dataclasses, pydantic models, numpy arrays, bytes) from "
            "the pipeline, or convert it in a component", output=where)

    def _key(self, key: Any, where: str) -> str:
        plain = self.jsonable(key, f"{where} key")
        return plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)

    def _nonfinite(self, value: float, where: str) -> None:
        if not self.warned:
            self.warned = True
            item = f"item {self._item}: " if self._item is not None else ""
            self._warn(f"warning: {item}{where} is {value}, written as null (JSON has no NaN or "
                       "infinity); other such numbers in this run are written as null too")
        return None

    def dumps(self, value: Any, *, indent: int | None = None, where: str = "output") -> str:
        """JSON text of ``jsonable(value)``: valid JSON, or :class:`OutputError`."""
        return json.dumps(self.jsonable(value, where), indent=indent, ensure_ascii=False,
                          allow_nan=False)

    def line(self, index: int, result: Any) -> str:
        """The output line of item ``index`` (``{"index": ..., "output": ...}``, no newline);
        :class:`OutputError` naming the item when the result has no JSON form."""
        self._item = index
        try:
            return json.dumps({"index": index, "output": self.jsonable(result)},
                              ensure_ascii=False, allow_nan=False)
        except OutputError as exc:
            raise OutputError(exc.detail, item=index, output=exc.output) from exc.__cause__


_PLAIN = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """True for a value that is its own JSON form (the common case, checked cheaply)."""
    kind = type(value)
    return kind in _PLAIN or (kind is float and math.isfinite(value))


def _is_loaded(value: Any, module: str, name: str) -> bool:
    """``isinstance(value, module.name)``, without importing the module: no value can be of a
    class whose module was never imported."""
    found = sys.modules.get(module)
    return found is not None and isinstance(value, getattr(found, name))


def _type_name(value: Any) -> str:
    kind = type(value)
    if kind.__module__ == "builtins" or kind.__module__.startswith("legato_file_"):
        return kind.__qualname__  # a file loaded by path: its module name is an internal one
    return f"{kind.__module__}.{kind.__qualname__}"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data, by :class:`Encoder`'s rules (a NaN warns on stderr)."""
    return Encoder().jsonable(value)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Valid JSON text of ``value`` by :class:`Encoder`'s rules; :class:`OutputError` for a
    value with no JSON form."""
    return Encoder().dumps(value, indent=indent)
