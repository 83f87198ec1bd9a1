"""Items from a source that blocks are pulled on a feeder thread: the scheduler never waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import legato as lg

WAIT = 10.0


@lg.component
def double(x: int) -> int:
    return 2 * x


@lg.pipeline
def twice(x: int) -> int:
    return double(x)


def test_an_item_finishes_while_the_source_waits_for_the_next(engine: lg.Engine) -> None:
    more = threading.Event()

    def source() -> Iterator[int]:
        yield 1
        assert more.wait(WAIT), "the first result never came while the source waited"
        yield 2

    results = twice.map(source(), engine=engine)
    assert next(results) == 2  # came back although the source is still blocked
    more.set()
    assert list(results) == [4]


def test_an_error_in_the_source_is_raised_by_the_run(engine: lg.Engine) -> None:
    def source() -> Iterator[int]:
        yield 1
        raise OSError("the socket closed")

    with pytest.raises(OSError, match="the socket closed"):
        list(twice.map(source(), engine=engine))


def test_a_list_is_read_without_a_feeder_thread(engine: lg.Engine) -> None:
    before = {t.name for t in threading.enumerate()}
    seen: list[set[str]] = []

    @lg.component(executor="inline")
    def look(x: int) -> int:
        seen.append({t.name for t in threading.enumerate()} - before)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return look(x)

    assert list(p.map([1, 2], engine=engine)) == [1, 2]
    assert all("legato-feeder" not in names for names in seen)
