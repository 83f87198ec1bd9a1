"""Cancelling a map stops everything it started: Ctrl-C on ``legato map`` exits 130 and leaves
no worker process behind and keeps the results already written; closing a ``map`` iterator
early kills the worker processes of its in-flight calls.

Worker processes are found by an environment token: each test puts a fresh
``LEGATO_TEST_TOKEN`` in the environment the workers inherit, then scans ``/proc/*/environ``.
No test sleeps and hopes: each waits on a condition (a marker file the component writes when it
runs, the token appearing or vanishing) up to a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import legato as lg
from legato.loader import load

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")

ROOT = Path(__file__).resolve().parent.parent
SLOW = ROOT / "tests" / "fixtures" / "cli_slow.py"
TOKEN = "LEGATO_TEST_TOKEN"
DEADLINE = 30.0  # seconds a condition may take to come true (spawning workers is the slow part)


def wait_until(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out after {deadline}s waiting for {what}"
        time.sleep(0.02)


def processes_with(token: str) -> dict[int, str]:
    """Live processes whose environment holds ``LEGATO_TEST_TOKEN=token``: pid -> command line.

    Zombies (exited, not yet reaped) have an empty environ and so do not count.
    """
    needle = f"{TOKEN}={token}".encode()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def workers_with(token: str) -> set[int]:
    """The worker processes (spawned by multiprocessing) among ``processes_with(token)``."""
    return {pid for pid, cmd in processes_with(token).items() if "spawn_main" in cmd}


def items(markers: Path, *naps: tuple[str, float]) -> list[dict[str, object]]:
    return [{"seconds": seconds, "tag": tag, "markers": str(markers)} for tag, seconds in naps]


# -- Ctrl-C on `legato map` ------------------------------------------------------------------


@dataclass(frozen=True)
class Cancelled:
    """What a `legato map` interrupted by SIGINT left: exit code, stderr, output, token."""

    returncode: int
    stderr: str
    output: list[dict[str, object]]
    token: str


@pytest.fixture(scope="module")
def cancelled_map(tmp_path_factory: pytest.TempPathFactory) -> Cancelled:
    """Start `legato map` over two quick items and three that sleep a minute in worker
    processes; once the quick results are written and a slow call runs, send SIGINT."""
    tmp = tmp_path_factory.mktemp("cancel")
    markers = tmp / "markers"
    markers.mkdir()
    data = tmp / "data.jsonl"
    rows = items(markers, ("a", 0), ("b", 0), ("slow1", 60), ("slow2", 60), ("slow3", 60))
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp / "out.jsonl"
    token = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "legato.cli", "map", f"{SLOW}:naps", str(data), "-o", str(out)],
        cwd=ROOT, env={**os.environ, TOKEN: token}, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # even if we ignore it
    )
    try:
        wait_until(lambda: (markers / "started-slow1").exists(), "a slow call to start")
        written = tmp / "out.jsonl.partial"  # where results go until the map is over
        wait_until(lambda: written.exists() and len(written.read_text().splitlines()) == 2,
                   "the two quick results to be written")
        assert workers_with(token), "no worker process carries the token"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test already failed
            process.kill()
            process.wait()
    assert not out.exists()  # a map that stopped never puts a half output in place
    output = [json.loads(line) for line in written.read_text().splitlines()]
    return Cancelled(process.returncode, stderr, output, token)


def test_sigint_during_map_exits_130_saying_cancelled(cancelled_map: Cancelled) -> None:
    assert cancelled_map.returncode == 130
    assert cancelled_map.stderr.strip().splitlines()[-1] == "cancelled"
    assert "Traceback" not in cancelled_map.stderr


def test_sigint_during_map_leaves_no_process_behind(cancelled_map: Cancelled) -> None:
    wait_until(lambda: not processes_with(cancelled_map.token),
               f"processes to exit: {processes_with(cancelled_map.token)}", deadline=5.0)


def test_results_written_before_the_cancel_stay_in_the_partial_output_file(
    cancelled_map: Cancelled,
) -> None:
    assert cancelled_map.output == [{"index": 0, "output": "a"}, {"index": 1, "output": "b"}]


def test_sigint_during_run_exits_130_and_leaves_no_process_behind(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    row = items(tmp_path, ("slow", 60))[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "legato.cli", "run", f"{SLOW}:naps",
         *(f"--input={name}={value}" for name, value in row.items())],
        cwd=ROOT, env={**os.environ, TOKEN: token}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_until(lambda: (tmp_path / "started-slow").exists(), "the slow call to start")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test already failed
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert (stdout, stderr) == ("", "cancelled\n")
    wait_until(lambda: not processes_with(token), "processes to exit", deadline=5.0)


# -- closing a map iterator in-process -------------------------------------------------------


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh token in this process's environment, so the workers it spawns carry it."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(TOKEN, value)
    return value


def test_closing_a_map_iterator_early_kills_its_worker_processes(
    engine: lg.Engine, token: str, tmp_path: Path
) -> None:
    naps = load(f"{SLOW}:naps")
    results = naps.map(items(tmp_path, ("quick", 0), ("slow1", 60), ("slow2", 60)),
                       engine=engine, window=3)
    assert next(results) == "quick"
    wait_until(lambda: (tmp_path / "started-slow1").exists(), "a slow call to start")
    busy = workers_with(token)
    assert busy
    started = time.monotonic()
    results.close()
    assert time.monotonic() - started < 5.0  # the sleeping calls were not waited for
    wait_until(lambda: not (workers_with(token) & busy), "the busy workers to exit", 5.0)


def test_a_map_iterator_that_ran_to_the_end_keeps_its_warm_workers(
    engine: lg.Engine, token: str, tmp_path: Path
) -> None:
    """The other side of the test above: only a cancel kills; finished calls keep workers warm
    (for the next run), and closing the engine stops them."""
    naps = load(f"{SLOW}:naps")
    assert list(naps.map(items(tmp_path, ("a", 0), ("b", 0)), engine=engine)) == ["a", "b"]
    warm = workers_with(token)
    assert warm
    engine.close()
    wait_until(lambda: not (workers_with(token) & warm), "the warm workers to exit", 5.0)
