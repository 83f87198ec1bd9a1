"""The crash test of issue 4: a running ``legato map`` is killed with SIGKILL part-way, then
``legato resume`` finishes it. Every item's result is in the output exactly once, and no item
the first run had finished is computed again.

The pipeline (tests/fixtures/cli_gated.py) logs each call and holds the items from GATE on at a
gate that stays shut in the first run, so the kill always lands with items 0..GATE-1 finished
and recorded and the rest waiting: no timing is guessed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from harness import WAIT
from legato.store import Store

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "cli_gated.py"
GATE, COUNT = 20, 40


def test_a_map_killed_with_sigkill_resumes_computing_only_what_was_not_finished(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    data, out, store_path = tmp_path / "items.jsonl", tmp_path / "out.jsonl", tmp_path / "s.db"
    data.write_text("".join(json.dumps({"x": x, "workdir": str(work)}) + "\n"
                            for x in range(COUNT)))
    command = [sys.executable, "-m", "legato.cli", "map", f"{FIXTURE}:gated", str(data),
               "-o", str(out), "--store", str(store_path), "--no-progress"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        run_id = first.stderr.readline().split()[1]  # "run <id>", printed before any item
        with Store.open(store_path) as store:
            deadline = time.monotonic() + WAIT
            while len([i for i in store.items(run_id) if i.status == "ok"]) < GATE:
                assert first.poll() is None, first.stderr.read()
                assert time.monotonic() < deadline, "the first run never recorded its items"
                time.sleep(0.02)  # polling the store, which the run's writer fills
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=WAIT)
            assert first.returncode == -signal.SIGKILL
            killed = store.run(run_id)
            assert killed.status == "running"  # it had no chance to say otherwise
            finished = {i.index for i in store.items(run_id) if i.status == "ok"}
        assert finished == set(range(GATE))
    finally:
        if first.poll() is None:
            first.kill()
        first.stderr.close()
    first_calls = Counter(int(line) for line in (work / "calls.log").read_text().split())
    assert set(first_calls) >= finished

    (work / "open").touch()  # the gate opens for the resumed run
    resumed = subprocess.run([sys.executable, "-m", "legato.cli", "resume", run_id,
                              "--store", str(store_path), "--no-progress"],
                             capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["index"] for line in lines) == list(range(COUNT))  # each exactly once
    assert all(line["output"] == f"sq={line['index'] ** 2}" for line in lines)
    all_calls = Counter(int(line) for line in (work / "calls.log").read_text().split())
    for index in finished:
        assert all_calls[index] == 1, f"item {index} was finished, yet computed again"
    assert set(all_calls) == set(range(COUNT))
    with Store.open(store_path) as store:
        run = store.run(run_id)
        assert (run.status, run.done, run.failed) == ("ok", COUNT, 0)
        assert len(store.runs()) == 1
