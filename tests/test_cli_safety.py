"""Data safety of ``legato map`` and ``legato resume`` (issue 10), as real subprocesses: an
output never destroys an input, an output file is replaced whole or not at all (the results of
a run that stopped kept beside it), the README's small example runs on a fresh clone, and
SIGTERM stops a run as Ctrl-C does: recorded, exit 143, resumable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import WAIT
from legato.store import Store

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = str(ROOT / "tests" / "fixtures" / "cli_pipelines.py")
GATED = str(ROOT / "tests" / "fixtures" / "cli_gated.py")


def legato(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """``python -m legato.cli ARGS`` to completion, its store under ``home``."""
    environ = {k: v for k, v in os.environ.items() if k != "LEGATO_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "legato.cli", *args], capture_output=True, text=True, cwd=cwd,
        env={**environ, "LEGATO_HOME": str(home)}, timeout=120, check=False)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text('{"x": 1}\n{"x": 2}\n{"x": 3}\n')
    return path


# -- an output is never an input -----------------------------------------------------------------


def _hard_link(data: Path, tmp_path: Path) -> Path:
    link = tmp_path / "hard.jsonl"
    os.link(data, link)
    return link


def _symbolic_link(data: Path, tmp_path: Path) -> Path:
    link = tmp_path / "sub" / "link.jsonl"
    link.parent.mkdir()
    link.symlink_to(data)
    return link


def _same_path_spelled_otherwise(data: Path, tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    return tmp_path / "sub" / ".." / data.name


@pytest.mark.parametrize("output", [
    pytest.param(lambda data, tmp_path: data, id="same path"),
    pytest.param(_same_path_spelled_otherwise, id="same path through .."),
    pytest.param(_hard_link, id="hard link"),
    pytest.param(_symbolic_link, id="symbolic link"),
])
def test_map_refuses_an_output_that_is_its_data_file_and_touches_nothing(
    output: Any, data: Path, tmp_path: Path
) -> None:
    target = output(data, tmp_path)
    before = data.read_bytes()
    done = legato("map", f"{PIPELINES}:add_one", str(data), "-o", str(target), cwd=tmp_path,
                  home=tmp_path / "home")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: -o {target} would overwrite the data file {data}")
    assert "write the results elsewhere" in done.stderr
    assert data.read_bytes() == before
    assert not Path(f"{target}.partial").exists()
    assert not (tmp_path / "home").exists()  # no run was recorded: nothing started


def test_map_refuses_an_events_file_that_is_its_data_file(data: Path, tmp_path: Path) -> None:
    before = data.read_bytes()
    done = legato("map", f"{PIPELINES}:add_one", str(data), "--events", str(data),
                  cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 2
    assert f"error: --events {data} would overwrite the data file" in done.stderr
    assert data.read_bytes() == before


def test_resume_refuses_an_output_that_is_the_runs_data_file(
    data: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    data.write_text('{"x": 1}\n{"x": 13}\n')  # item 1 fails: the run has something to resume
    first = legato("map", f"{PIPELINES}:lucky", str(data), "-o", str(tmp_path / "out.jsonl"),
                   cwd=tmp_path, home=home)
    assert first.returncode == 1, first.stderr
    run_id = first.stderr.split()[1]
    before = data.read_bytes()
    done = legato("resume", run_id, "-o", str(data), cwd=tmp_path, home=home)
    assert done.returncode == 2
    assert f"error: -o {data} would overwrite the data file" in done.stderr
    assert data.read_bytes() == before


# -- written beside, then renamed ----------------------------------------------------------------


def test_map_creates_the_output_directory(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "out.jsonl"
    done = legato("map", f"{PIPELINES}:add_one", str(data), "-o", str(out), cwd=tmp_path,
                  home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert [line["output"] for line in jsonl(out)] == [2, 3, 4]
    assert not Path(f"{out}.partial").exists()


def test_a_map_that_stops_leaves_the_previous_output_and_keeps_its_results_beside_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"x": 1}\n{"x": 13}\n{"x": 2}\n')  # 13 fails, and --on-error raise stops
    out = tmp_path / "out.jsonl"
    out.write_text("the previous results\n")
    done = legato("map", f"{PIPELINES}:lucky", str(data), "-o", str(out), "--on-error", "raise",
                  cwd=tmp_path, home=tmp_path / "home")
    assert done.returncode == 1
    assert out.read_text() == "the previous results\n"
    partial = Path(f"{out}.partial")
    assert jsonl(partial) == [{"index": 0, "output": 2}]
    assert f"the results written so far are in {partial}; {out} is left as it was" in (
        done.stderr)


def test_a_map_that_finishes_replaces_the_output_whole(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("the previous results\n")
    done = legato("map", f"{PIPELINES}:add_one", str(data), "-o", str(out), cwd=tmp_path,
                  home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert jsonl(out) == [{"index": i, "output": i + 2} for i in range(3)]
    assert not Path(f"{out}.partial").exists()


def test_an_output_through_a_symbolic_link_replaces_the_file_and_keeps_the_link(
    data: Path, tmp_path: Path
) -> None:
    real = tmp_path / "results" / "out.jsonl"
    real.parent.mkdir()
    real.write_text("the previous results\n")
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    done = legato("map", f"{PIPELINES}:add_one", str(data), "-o", str(link), cwd=tmp_path,
                  home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert link.resolve() == real
    assert [line["output"] for line in jsonl(real)] == [2, 3, 4]
    assert not Path(f"{real}.partial").exists()


@pytest.mark.skipif(not Path("/dev/stdout").exists(), reason="no /dev/stdout here")
def test_an_output_that_is_not_a_regular_file_is_written_directly(
    data: Path, tmp_path: Path
) -> None:
    done = legato("map", f"{PIPELINES}:add_one", str(data), "-o", "/dev/stdout", cwd=tmp_path,
                  home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["output"] for line in done.stdout.splitlines()] == [2, 3, 4]
    assert Path("/dev/stdout").is_symlink()  # never replaced by a file
    assert not Path("/dev/stdout.partial").exists()


# -- the README's small example ------------------------------------------------------------------


def test_the_readme_quickstart_map_runs_on_a_fresh_clone(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"`(legato\s+map\s+examples/quickstart/[^`]*)`", readme)
    assert found, "the README's small example is gone"
    command = found[1].split()
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "examples" / "quickstart", clone / "examples" / "quickstart")
    assert not (clone / "out").exists()
    done = legato(*command[1:], cwd=clone, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    output = clone / command[command.index("-o") + 1]
    lines = jsonl(output)
    count = len((clone / "examples/quickstart/reviews.jsonl").read_text().splitlines())
    assert [line["index"] for line in lines] == list(range(count))
    assert all("output" in line for line in lines)


# -- SIGTERM -------------------------------------------------------------------------------------

GATE, COUNT = 20, 40  # tests/fixtures/cli_gated.py holds items from GATE on at its gate


@dataclass
class Gated:
    """A ``legato map`` of tests/fixtures/cli_gated.py over COUNT items, started and running
    with items 0..GATE-1 done and recorded, the rest held at the gate."""

    process: subprocess.Popen[str]
    run_id: str
    work: Path  # the fixture's log and gate
    out: Path  # held "the previous results" before the run
    store: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "legato.cli", *args, "--store",
                               str(self.store)], capture_output=True, text=True, timeout=120,
                              check=False)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[Gated]:
    work = tmp_path / "work"
    work.mkdir()
    data, out, store_path = tmp_path / "items.jsonl", tmp_path / "out.jsonl", tmp_path / "s.db"
    data.write_text("".join(json.dumps({"x": x, "workdir": str(work)}) + "\n"
                            for x in range(COUNT)))
    out.write_text("the previous results\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "legato.cli", "map", f"{GATED}:gated", str(data), "-o", str(out),
         "--store", str(store_path), "--no-progress"], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        run_id = process.stderr.readline().split()[1]  # "run <id>", printed before any item
        with Store.open(store_path) as store:
            deadline = time.monotonic() + WAIT
            while sum(1 for i in store.items(run_id) if i.status == "ok") < GATE:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "the run never recorded its first items"
                time.sleep(0.02)  # polling the store, which the run's writer fills
        yield Gated(process, run_id, work, out, store_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def test_sigterm_stops_a_map_recorded_and_resumable_with_exit_143(gated: Gated) -> None:
    run_id, out = gated.run_id, gated.out
    assert gated.process.stderr is not None
    gated.process.send_signal(signal.SIGTERM)  # items 0..GATE-1 are done, the rest at the gate
    stderr = gated.process.stderr.read()
    assert gated.process.wait(timeout=WAIT) == 143, stderr
    assert stderr.rstrip().endswith("terminated (SIGTERM)")
    assert f"legato resume {run_id} continues it" in stderr
    assert out.read_text() == "the previous results\n"
    assert [line["index"] for line in jsonl(Path(f"{out}.partial"))] == list(range(GATE))
    with Store.open(gated.store) as store:
        stopped = store.run(run_id)
        assert stopped.status == "interrupted"  # said so before it exited: not "running"
        assert stopped.finished is not None
        assert {i.index for i in store.items(run_id) if i.status == "ok"} == set(range(GATE))
    shown = gated.cli("show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].split() == ["run", run_id, "gated", "interrupted"]
    assert (f"items    {GATE} done, 0 failed, {COUNT - GATE} pending (of {COUNT}); "
            f"{GATE} items recorded so far") in shown.stdout
    assert f"legato resume {run_id}" in shown.stdout

    (gated.work / "open").touch()  # the gate opens for the resumed run
    resumed = gated.cli("resume", run_id, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert [line["output"] for line in jsonl(out)] == [f"sq={x * x}" for x in range(COUNT)]
    assert not Path(f"{out}.partial").exists()
    calls = [int(x) for x in (gated.work / "calls.log").read_text().split()]
    assert all(calls.count(x) == 1 for x in range(GATE))  # done before SIGTERM: not again
    with Store.open(gated.store) as store:
        run = store.run(run_id)
        assert (run.status, run.done, run.failed) == ("ok", COUNT, 0)


def test_show_counts_the_items_a_killed_run_recorded(gated: Gated) -> None:
    gated.process.send_signal(signal.SIGKILL)  # no chance to say anything: left "running"
    gated.process.wait(timeout=WAIT)
    shown = gated.cli("show", gated.run_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].split() == ["run", gated.run_id, "gated", "interrupted"]
    assert (f"items    {GATE} done, 0 failed, {COUNT - GATE} pending (of {COUNT}); "
            f"{GATE} items recorded so far") in shown.stdout  # the rest wait at the gate
    assert gated.out.read_text() == "the previous results\n"
