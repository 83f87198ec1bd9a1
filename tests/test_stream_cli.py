"""``legato stream`` and ``legato replay`` run as real subprocesses against
tests/fixtures/cli_stream.py; ``legato show`` of a stream recorded in the store."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_cli import ROOT, legato

FIXTURE = "tests/fixtures/cli_stream.py"


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _overruns(stderr: str) -> int:
    return int(stderr.split(" overruns")[0].split()[-1])


def test_stream_ticks_for_a_count_and_writes_each_result(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = legato("stream", f"{FIXTURE}:loop", "--hz", "50", "--count", "10", "-o", str(out),
                  "--every", "0")
    assert done.returncode == 0, done.stderr
    lines = jsonl(out)
    assert len(lines) + _overruns(done.stderr) == 10  # a busy machine may make a tick late
    assert sorted(line["index"] for line in lines) == list(range(len(lines)))
    times = sorted(line["output"]["t"] for line in lines)
    assert all(abs((b - a) * 50 - round((b - a) * 50)) < 0.01  # on the 20 ms grid
               for a, b in itertools.pairwise(times))
    assert f"{len(lines)} in, {len(lines)} done, 0 dropped, 0 missed, 0 failed" in done.stderr
    assert "sense: p50" in done.stderr


def test_stream_reads_items_from_a_file_and_writes_failures_as_lines(tmp_path: Path) -> None:
    data = tmp_path / "said.jsonl"
    data.write_text('{"text": "hi"}\n{"text": "boom"}\n\n{"text": "bye"}\n')
    done = legato("stream", f"{FIXTURE}:voice", "--input", str(data), "--every", "0")
    assert done.returncode == 0, done.stderr
    lines = sorted((json.loads(line) for line in done.stdout.splitlines()),
                   key=lambda line: line["index"])
    assert [line.get("output") for line in lines] == ["HI", None, "BYE"]
    assert "cannot say boom" in lines[1]["error"]
    assert lines[1]["node"] == "shout"


def test_stream_needs_exactly_one_source() -> None:
    done = legato("stream", f"{FIXTURE}:loop")
    assert done.returncode == 2
    assert "give one source: --hz HZ (ticks) or --input FILE.jsonl" in done.stderr
    done = legato("stream", f"{FIXTURE}:voice", "--input", "nowhere.jsonl")
    assert done.returncode == 2
    assert "no such data file: nowhere.jsonl" in done.stderr


def test_a_recorded_stream_replays_to_the_same_results(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    done = legato("stream", f"{FIXTURE}:loop", "--hz", "100", "--duration", "0.2",
                  "--record", str(record), "--every", "0")
    assert done.returncode == 0, done.stderr
    recorded = sorted(json.loads(line)["output"]["t"] for line in done.stdout.splitlines())
    assert len(recorded) + _overruns(done.stderr) == 20
    again = legato("replay", str(record), f"{FIXTURE}:loop", "--fast", "--check",
                   "--every", "0")
    assert again.returncode == 0, again.stderr
    assert f"all {len(recorded)} results match the record" in again.stderr
    assert sorted(json.loads(line)["output"]["t"] for line in again.stdout.splitlines()) \
        == recorded


def test_replay_check_fails_when_results_differ(tmp_path: Path) -> None:
    record = tmp_path / "said.jsonl"
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "hi"}\n')
    assert legato("stream", f"{FIXTURE}:voice", "--input", str(data), "--record", str(record),
                  "--every", "0").returncode == 0
    lines = record.read_text().replace('"HI"', '"HELLO"')
    record.write_text(lines)  # as if the pipeline's answer had changed since
    done = legato("replay", str(record), f"{FIXTURE}:voice", "--fast", "--check", "--every",
                  "0")
    assert done.returncode == 1
    assert "1 of 1 results differ from the record (items 0)" in done.stderr


def test_replay_of_a_file_that_is_not_a_record_is_an_error(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "hi"}\n')
    done = legato("replay", str(data), f"{FIXTURE}:voice")
    assert done.returncode == 1
    assert "is not a legato stream record" in done.stderr


def test_show_prints_the_counters_of_a_stream_recorded_in_the_store(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    done = legato("stream", f"{FIXTURE}:voice", "--input", "-", "--store", str(store),
                  "--every", "0", stdin="".join(f'{{"text": "w{i}"}}\n' for i in range(10)))
    assert done.returncode == 0, done.stderr
    run = done.stderr.split("run ", 1)[1].split()[0]
    shown = legato("show", run, "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    assert "stream   10 in, 10 done, 0 dropped, 0 overruns" in shown.stdout
    assert "STAGE" in shown.stdout
    assert "shout" in shown.stdout.split("STAGE")[1]
    as_json = json.loads(legato("show", run, "--store", str(store), "--json").stdout)
    assert as_json["run"]["options"]["stream"]["done"] == 10


def test_an_endless_stream_stops_on_sigterm_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "legato.cli", "stream", f"{FIXTURE}:loop", "--hz", "50",
         "--every", "0.1", "-o", str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True,
        env=os.environ.copy())
    assert process.stderr is not None
    line = process.stderr.readline()  # the live line: the stream is running
    assert "items/s" in line
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "terminated (SIGTERM)" in rest
    assert not out.exists()  # an unfinished output is never put in place
    partial = tmp_path / "out.jsonl.partial"
    assert partial.exists()
    assert all("output" in json.loads(text) for text in partial.read_text().splitlines())
