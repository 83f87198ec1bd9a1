"""One process at a time resumes a run: the claim is taken in one transaction, on SQLite and on
PostgreSQL; a holder that is alive is named in the refusal, a dead one is taken over (a pid the
system gave to a newer process is not mistaken for the holder)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

import legato as lg
from legato.store import Store, schema
from legato.store.claims import Claimant, alive, me, started

HERE = Path(__file__).resolve().parent
GATED, RACER = HERE / "gated.py", HERE / "racer.py"
COUNT = 6


@lg.component
def triple(x: int) -> int:
    return 3 * x


@lg.pipeline
def tripled(x: int) -> int:
    return triple(x)


def _stopped_run(store: Store) -> str:
    """A run stopped part-way (closed after two results, like a Ctrl-C): resumable."""
    first = tripled.map(range(COUNT), store=store, window=1)
    assert [next(first) for _ in range(2)] == [0, 3]
    first.close()
    run = store.runs()[0]
    assert run.status == "cancelled"
    return run.id


def _held_by(store: Store, run_id: str, holder: Claimant) -> None:
    """Make ``holder`` the process that holds the run, as if it had died while running it."""
    with store.engine.begin() as connection:
        connection.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(
            status="running", host=holder.host, pid=holder.pid, process=holder.process))


def test_this_process_is_its_own_claimant_with_its_start() -> None:
    here = me()
    assert (here.host, here.pid) == (socket.gethostname(), os.getpid())
    assert here.process
    assert here.process == started(os.getpid())
    assert alive(here)


def test_a_run_still_being_written_by_this_process_is_not_resumed(store: Store) -> None:
    first = tripled.map(range(COUNT), store=store, window=1)
    assert next(first) == 0  # the run is open: this process holds it
    run_id = store.runs()[0].id
    try:
        with pytest.raises(lg.StoreError, match=rf"run {run_id} is held by pid {os.getpid()} "
                           rf"on {socket.gethostname()}: that process is still running it"):
            tripled.map(range(COUNT), store=store, resume=run_id)
    finally:
        first.close()
    assert list(tripled.map(range(COUNT), store=store, resume=run_id)) == [
        3 * x for x in range(COUNT)]  # closed: no longer held


def test_a_holder_whose_process_is_gone_is_taken_over(store: Store) -> None:
    run_id = _stopped_run(store)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _held_by(store, run_id, Claimant(socket.gethostname(), gone.pid, "boot:1"))
    assert list(tripled.map(range(COUNT), store=store, resume=run_id)) == [
        3 * x for x in range(COUNT)]
    run = store.run(run_id)
    assert (run.status, run.pid, run.process) == ("ok", os.getpid(), me().process)


def test_a_holder_whose_pid_was_reused_is_taken_over(store: Store) -> None:
    run_id = _stopped_run(store)
    # this pid runs (it is this test's), but it started after the recorded holder did
    _held_by(store, run_id, Claimant(socket.gethostname(), os.getpid(), "another-boot:42"))
    assert list(tripled.map(range(COUNT), store=store, resume=run_id)) == [
        3 * x for x in range(COUNT)]


def test_a_holder_on_another_host_is_refused_and_force_releases_it(
    store: Store, tmp_path: Path,
) -> None:
    run_id = _stopped_run(store)
    _held_by(store, run_id, Claimant("elsewhere.example", 4242, "b:1"))
    with pytest.raises(lg.StoreError, match=r"held by pid 4242 on elsewhere.example \(on "
                       rf"another host.*legato resume {run_id} --force"):
        tripled.map(range(COUNT), store=store, resume=run_id)
    store.release(run_id)
    assert list(tripled.map(range(COUNT), store=store, resume=run_id))[-1] == 3 * (COUNT - 1)


def _legato(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legato.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_two_processes_resuming_one_run_at_the_same_moment_one_is_refused(
    store_url: str, tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"x": x, "workdir": str(work)}) + "\n"
                            for x in range(COUNT)))
    env = {**os.environ, "LEGATO_BLOBS": str(tmp_path / "blobs"),
           "LEGATO_HOME": str(tmp_path / "home")}
    (work / "fail").touch()  # the first run leaves items 2.. failed
    first = _legato(["map", f"{GATED}:gated", str(data), "-o", str(tmp_path / "first.jsonl"),
                     "--store", store_url, "--no-progress"], env)
    assert first.returncode == 1, first.stderr
    run_id = first.stderr.split()[1]  # "run <id>"
    before = Counter((work / "calls.log").read_text().split())
    (work / "fail").unlink()

    gates = [tmp_path / f"gate{i}" for i in range(2)]
    for gate in gates:
        os.mkfifo(gate)
    racers = [subprocess.Popen(
        [sys.executable, str(RACER), str(gate), "resume", run_id, "--store", store_url,
         "--no-progress", "-o", str(tmp_path / f"out{i}.jsonl")],
        env=env, stderr=subprocess.PIPE, text=True) for i, gate in enumerate(gates)]
    try:
        with contextlib.ExitStack() as barrier:  # each opens once its racer waits on it
            for gate in gates:
                barrier.enter_context(open(gate, "wb"))
        # closed: the barrier falls, both racers go now
        # the holder waits at the component's gate, so the first to end is the refused one
        exits = {os.pidfd_open(racer.pid): racer for racer in racers}
        ended, _, _ = select.select(list(exits), [], [], 120)
        assert ended, "neither racer ended: both were let in, and both wait at the gate"
        loser = exits[ended[0]]
        (winner,) = [racer for racer in racers if racer is not loser]
        assert loser.wait() == 1
        refusal = loser.stderr.read()
        assert f"run {run_id} is held by pid {winner.pid} on {socket.gethostname()}" in refusal
        (work / "open").touch()
        assert winner.wait(timeout=120) == 0, winner.stderr.read()
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
            racer.stderr.close()
        for fd in list(locals().get("exits", {})):
            os.close(fd)
    after = Counter((work / "calls.log").read_text().split())
    assert {x: after[str(x)] - before[str(x)] for x in range(COUNT)} == {
        0: 0, 1: 0, 2: 1, 3: 1, 4: 1, 5: 1}  # the failed items computed once, by the holder
    with Store.open(store_url, blobs=tmp_path / "blobs") as store:
        run = store.run(run_id)
        assert (run.status, run.done, run.failed) == ("ok", COUNT, 0)
        assert store.results(run_id) == {x: x * x for x in range(COUNT)}
        with store.engine.connect() as connection:
            pending = connection.execute(sa.select(sa.func.count()).select_from(schema.items)
                                         .where(schema.items.c.status == "pending")).scalar()
        assert pending == 0
