"""JSON lines in and out for ``legato map`` and ``legato resume``: items read from a data file
(one JSON object of inputs per line), results written one JSON line per item, in input order.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NoReturn

from legato.cli.jsonout import Encoder
from legato.engine import Failure
from legato.engine.events import ItemFinished
from legato.errors import ComponentError, InputError, OutputError
from legato.errors import Stopped as Stopped  # re-exported: raised here


class OnError(enum.StrEnum):
    """What ``legato map`` does with a failed item."""

    collect = "collect"
    skip = "skip"
    raise_ = "raise"


class Malformed(Mapping[str, Any]):
    """A data line that is not a JSON object (or not UTF-8 text), standing in for its item.

    It is a mapping that cannot be read: reading it raises an :class:`InputError` with the
    line's problem, so the engine fails this item (and no other) with that message, which the
    run store records, and item indices stay equal to line order. The CLI writes ``message``.
    """

    def __init__(self, message: str, index: int) -> None:
        self.message = message
        self.index = index

    def _refuse(self) -> NoReturn:
        raise InputError(self.message, item=self.index)

    def __getitem__(self, key: str) -> Any:
        self._refuse()

    def __iter__(self) -> Iterator[str]:
        self._refuse()

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"Malformed({self.message!r})"


class DataLines:
    """Items from JSON lines, one object of input names to values per line; blank lines skip.

    A line that is not a JSON object (or not UTF-8) becomes a :class:`Malformed` item.
    ``forget(index)`` gives the line number of item ``index`` once (so memory stays flat).
    """

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream = stream
        self.name = name
        self._lines: dict[int, int] = {}

    def __iter__(self) -> Iterator[Any]:
        index = 0
        for number, raw in enumerate(self.stream, 1):
            if not raw.strip():
                continue
            self._lines[index] = number
            yield self._parse(raw, number, index)
            index += 1

    def _parse(self, raw: bytes, number: int, index: int) -> Any:
        where = f"{self.name}:{number}"
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return Malformed(f"{where}: not UTF-8 text: {exc.reason} at byte {exc.start}", index)
        except json.JSONDecodeError as exc:
            return Malformed(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})", index)
        if not isinstance(value, dict):
            return Malformed(f"{where}: expected a JSON object of input names to values, got "
                             f"{type(value).__name__}", index)
        return value

    def forget(self, index: int) -> int:
        """The line number of item ``index``, forgotten after this call."""
        return self._lines.pop(index)


def count_items(path: Path) -> int:
    """How many items the data file holds: its lines that are not blank."""
    with path.open("rb") as counting:
        return sum(1 for raw in counting if raw.strip())


class DataFile(DataLines):
    """:class:`DataLines` of a file whose items were counted up front (``len``), so that a
    progress bar knows the total."""

    def __init__(self, stream: IO[bytes], name: str, count: int) -> None:
        super().__init__(stream, name)
        self._count = count

    def __len__(self) -> int:
        return self._count


class FinishOrder:
    """The item index of each result of an unordered run, in the order the run hands them out.

    Unordered results carry no index. The run publishes :class:`ItemFinished` (with the index)
    on its bus, on its own loop's thread, at the moment it queues the item to be handed out, and
    hands queued items out first in, first out: so the n-th result of the run belongs to the
    n-th item it said finished. Subscribe this to the engine's bus before the run starts;
    :meth:`next` gives the index of the next result.
    """

    def __init__(self, run: str) -> None:
        self.run = run
        self._finished: deque[int] = deque()

    def __call__(self, event: Any) -> None:
        if isinstance(event, ItemFinished) and event.run == self.run and not event.cancelled:
            self._finished.append(event.item)

    def next(self) -> int:
        """The index of the result being handed out now."""
        return self._finished.popleft()


def failure_record(failure: Failure, data: DataLines, line: int) -> dict[str, Any]:
    """The output line of a failed item: its index, error message, failing node and data line."""
    error = failure.error
    node = None
    if isinstance(failure.inputs, Malformed):
        message = failure.inputs.message
    elif isinstance(error, InputError):
        message = f"{data.name}:{line}: {str(error).removeprefix(f'item {error.item}: ')}"
    else:
        message = str(error)
        node = error.node if isinstance(error, ComponentError | OutputError) else None
    return {"index": failure.index, "error": message, "node": node, "line": line}


def write_results(
    results: Iterator[Any], lines: DataLines, out: IO[str], on_error: OnError,
    order: FinishOrder | None = None,
) -> tuple[int, int]:
    """Write each result as a JSON line (failures as ``on_error`` says); (done, failed).

    Results come in input order, or (``order`` given) as the run's items finish, ``order``
    telling whose each one is."""
    done = failed = 0
    encoder = Encoder()  # one per run: warns about NaN once
    for position, result in enumerate(results):
        index = position if order is None else order.next()
        line = lines.forget(index)
        if not isinstance(result, Failure):
            try:
                text = encoder.line(index, result)
            except OutputError as exc:  # no JSON form: this item fails, the others go on
                result = Failure(index, exc, {})
            else:
                out.write(text + "\n")
                out.flush()
                done += 1
                continue
        failed += 1
        record = failure_record(result, lines, line)
        if on_error is OnError.raise_:
            raise Stopped(record["error"])
        if on_error is OnError.collect:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
    return done, failed
