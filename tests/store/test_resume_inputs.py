"""A resumed run gets the inputs it was recorded with, or is refused naming the item that
differs; a finished run is handed back as it is; an interrupted run tells how far it got."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import legato as lg
from legato.store import Store

HERE = Path(__file__).resolve().parent
GATED = HERE / "gated.py"
COUNT = 6
CALLS: list[int] = []
_lock = threading.Lock()


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


@lg.component
def plus_one(x: int) -> int:
    with _lock:
        CALLS.append(x)
    return x + 1


@lg.pipeline
def bumped(x: int) -> int:
    return plus_one(x)


def _stopped_run(store: Store, items: list[int]) -> str:
    """A run stopped after its first two results (like a Ctrl-C)."""
    first = bumped.map(items, store=store, window=1)
    assert [next(first) for _ in range(2)] == [items[0] + 1, items[1] + 1]
    first.close()
    return store.runs()[0].id


def test_an_interrupted_run_knows_how_many_items_it_recorded(store: Store) -> None:
    run_id = _stopped_run(store, list(range(COUNT)))
    run = store.run(run_id)
    assert run.recorded == len(store.items(run_id))
    assert run.recorded >= 2
    assert run.total == COUNT  # the list was read to its end (the window ran ahead)
    assert store.runs()[0].recorded == run.recorded


def test_resuming_with_a_changed_item_is_refused_naming_it(store: Store) -> None:
    run_id = _stopped_run(store, list(range(COUNT)))
    before = store.run(run_id)
    changed = [10, 1, 2, 3, 4, 5]
    with pytest.raises(lg.StoreError, match=rf"item 0's inputs differ from those run {run_id} "
                       r"recorded.*--allow-changed-inputs"):
        list(bumped.map(changed, store=store, resume=run_id))
    after = store.run(run_id)
    assert (after.status, after.finished, after.done) == (
        before.status, before.finished, before.done)  # the refused resume left it as it was
    CALLS.clear()
    results = list(bumped.map(changed, store=store, resume=run_id, allow_changed_inputs=True))
    assert results == [x + 1 for x in changed]
    assert 10 in CALLS
    assert 1 not in CALLS  # item 1 was recorded, unchanged: handed back


def test_resuming_with_more_items_is_refused_with_both_counts(store: Store) -> None:
    run_id = _stopped_run(store, list(range(COUNT)))
    with pytest.raises(lg.StoreError, match=rf"run {run_id} had {COUNT} items; its input now "
                       rf"has more \(item {COUNT} is new\)"):
        list(bumped.map(range(2000), store=store, resume=run_id))
    assert store.run(run_id).total == COUNT  # the run did not grow


def test_resuming_with_fewer_items_is_refused_with_both_counts(store: Store) -> None:
    run_id = _stopped_run(store, list(range(COUNT)))
    with pytest.raises(lg.StoreError, match=rf"run {run_id} had {COUNT} items; its input now "
                       r"has 4 \(items 4 to 5 are missing\)"):
        list(bumped.map(range(4), store=store, resume=run_id))
    assert list(bumped.map(range(4), store=store, resume=run_id,
                           allow_changed_inputs=True)) == [1, 2, 3, 4]
    run = store.run(run_id)
    assert (run.status, run.done, run.total) == ("ok", 4, 4)
    assert {item.index for item in store.items(run_id)} == {0, 1, 2, 3}


def test_resuming_a_finished_run_hands_back_its_results_and_keeps_its_record(
    store: Store,
) -> None:
    assert list(bumped.map(range(3), store=store)) == [1, 2, 3]
    run = store.runs()[0]
    CALLS.clear()
    assert list(bumped.map(range(3), store=store, resume=run.id)) == [1, 2, 3]
    assert CALLS == []
    again = store.run(run.id)
    assert (again.status, again.finished, again.duration) == ("ok", run.finished, run.duration)


def _legato(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legato.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_legato_resume_refuses_an_edited_data_file_and_says_nothing_to_resume_when_done(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    data, out, store_path = tmp_path / "items.jsonl", tmp_path / "out.jsonl", tmp_path / "s.db"
    lines = [json.dumps({"x": x, "workdir": str(work)}) + "\n" for x in range(COUNT)]
    data.write_text("".join(lines))
    env = {**os.environ, "LEGATO_BLOBS": str(tmp_path / "blobs")}
    (work / "fail").touch()  # items 2.. fail: the run is left to resume
    first = _legato(["map", f"{GATED}:gated", str(data), "-o", str(out), "--store",
                     str(store_path), "--no-progress"], env)
    assert first.returncode == 1, first.stderr
    run_id = first.stderr.split()[1]
    (work / "fail").unlink()
    (work / "open").touch()

    more = [json.dumps({"x": x, "workdir": str(work)}) + "\n" for x in range(COUNT, 2000)]
    data.write_text("".join(lines + more))  # the data grew to 2,000 lines
    grown = _legato(["resume", run_id, "--store", str(store_path), "--no-progress"], env)
    assert grown.returncode == 1
    assert (f"run {run_id} had {COUNT} items; its input now has more (item {COUNT} is new)"
            in grown.stderr)

    lines[0] = json.dumps({"x": 10, "workdir": str(work)}) + "\n"  # an item changed
    data.write_text("".join(lines))
    refused = _legato(["resume", run_id, "--store", str(store_path), "--no-progress"], env)
    assert refused.returncode == 1
    assert f"item 0's inputs differ from those run {run_id} recorded" in refused.stderr

    data.write_text("".join(lines) + lines[-1])  # changed, and one line more

    accepted = _legato(["resume", run_id, "--store", str(store_path), "--no-progress",
                        "--allow-changed-inputs"], env)
    assert accepted.returncode == 0, accepted.stderr
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["output"] for line in results] == [100, 1, 4, 9, 16, 25, 25]

    with Store.open(store_path, blobs=tmp_path / "blobs") as store:
        duration = store.run(run_id).duration
    done = _legato(["resume", run_id, "--store", str(store_path)], env)
    assert done.returncode == 0, done.stderr
    assert f"run {run_id} finished: {COUNT + 1} items done, nothing to resume" in done.stderr
    with Store.open(store_path, blobs=tmp_path / "blobs") as store:
        assert store.run(run_id).duration == duration


def test_an_items_digest_is_that_of_its_inputs_in_any_order() -> None:
    from legato.store.session import inputs_digest

    assert inputs_digest({"a": 1, "b": "two"}) == inputs_digest({"b": "two", "a": 1})
    assert inputs_digest({"a": 1, "b": "two"}) != inputs_digest({"a": 1, "b": "three"})
    assert inputs_digest({"a": threading.Lock()}) is None  # no stored form: no digest
