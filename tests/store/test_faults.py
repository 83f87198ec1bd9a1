"""Bad input and faults: a corrupt or locked database, two processes at once, a full disk.
Each gives a clear StoreError; none corrupts a record or loses a finished item's result."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import legato as lg
from harness import WAIT
from legato.store import Store


@lg.component
def payload(x: int) -> bytes:
    return random.Random(x).randbytes(20_000)  # 20 kB that do not compress, each item's own


@lg.component
def size(data: bytes) -> int:
    return len(data)


@lg.pipeline
def sized(x: int) -> int:
    return size(payload(x))


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    path.write_bytes(b"this is not a database at all, just some bytes" * 100)
    with pytest.raises(lg.StoreError, match=r"legato.db is not a SQLite database.*move it aside"):
        Store.open(path)


def test_a_database_with_corrupt_pages_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    with Store.open(path) as store:
        list(sized.map(range(3), store=store))
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # the header survives, every page is garbage
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(lg.StoreError, match="corrupt"):
        Store.open(path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process's exclusive write lock on the SQLite file, while inside."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_locked_database_gives_a_clear_error_before_the_run(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    Store.open(path).close()
    with (locked(path), Store.open(path, timeout=0.2) as store,
          pytest.raises(lg.StoreError, match="locked by another process")):
        list(sized.map(range(3), store=store))
    assert [result for result in sized.map(range(2), store=path)] == [20_000, 20_000]


def test_a_lock_taken_mid_run_loses_no_result_and_no_record_is_half_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "legato.db"
    store = Store.open(path, timeout=0.2)
    results = []
    run = sized.map(range(40), store=store, window=1, run_id="mid")
    for result in run:
        results.append(result)
        if len(results) == 10:
            wait_until(lambda: len(store.items("mid")) >= 5)
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            break
    with pytest.raises(lg.StoreError, match="locked by another process"):
        results.extend(run)
    holder.execute("ROLLBACK")
    holder.close()
    assert results == [20_000] * 40  # every item's result reached the caller
    recorded = store.results("mid")  # every recorded result reads back whole
    assert len(recorded) >= 5
    assert set(recorded.values()) == {20_000}
    store.close()


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (a read of the store, which its writer fills on its own thread)
    until it holds; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the store never recorded what was expected"
        time.sleep(0.01)


_RECORDER = textwrap.dedent("""
    import sys
    import legato as lg

    @lg.component
    def square(x: int) -> int:
        return x * x

    @lg.pipeline
    def squares(x: int) -> int:
        return square(x)

    results = list(squares.map(range(300), store=sys.argv[1], run_id=sys.argv[2]))
    assert results == [x * x for x in range(300)]
""")


def test_two_processes_record_into_one_store_at_once(store_url: str, tmp_path: Path) -> None:
    script = tmp_path / "record.py"
    script.write_text(_RECORDER)
    Store.open(store_url, blobs=tmp_path / "blobs").close()  # both find it made
    env = {"LEGATO_BLOBS": str(tmp_path / "blobs"), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, str(script), store_url, name], env=env,
                              stderr=subprocess.PIPE, text=True) for name in ("one", "two")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Store.open(store_url, blobs=tmp_path / "blobs") as store:
        for name in ("one", "two"):
            run = store.run(name)
            assert (run.status, run.done) == ("ok", 300)
            assert len(store.nodes(name)) == 300
            assert store.results(name) == {x: x * x for x in range(300)}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real disk that fills up (mounting needs root; skipped without)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_while_writing_blobs_is_reported_and_loses_no_result(
    tmp_path: Path, tiny_disk: Path
) -> None:
    store = Store.open(tmp_path / "legato.db", blobs=tiny_disk)
    results = []
    with pytest.raises(lg.StoreError, match="No space left on device"):
        results.extend(sized.map(range(40), store=store))  # 800 kB of values for 256 kB
    assert results == [20_000] * 40
    run_id = store.runs()[0].id
    for index, value in store.results(run_id).items():  # what was recorded is whole
        assert value == 20_000, index
    leftovers = [p for p in tiny_disk.rglob(".tmp-*")]
    assert leftovers == []  # no half-written blob left behind
    store.close()
