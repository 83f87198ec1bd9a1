"""The run-store commands of the ``legato`` CLI, run as real subprocesses against a real SQLite
store in a temporary ``LEGATO_HOME``: ``map`` records every run, ``runs`` lists them, ``show``
details one, ``timeline`` draws one, ``cache`` lists and clears cached outputs, and ``resume``
continues a run that stopped, writing each item's result exactly once.

The pipelines are in tests/fixtures/cli_records.py: their calls are logged to a file (what was
computed) and made to fail by marker files (no sleeping, no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from legato.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = str(ROOT / "tests" / "fixtures" / "cli_records.py")


def fixture_line(marker: str) -> str:
    """``cli_records.py:LINE`` of the one fixture line holding ``marker``, as ``show`` names a
    raising line (relative to the pipeline file's directory)."""
    lines = Path(FIXTURE).read_text().splitlines()
    found = [n for n, text in enumerate(lines, 1) if marker in text]
    assert len(found) == 1, f"marker {marker!r} on lines {found}"
    return f"cli_records.py:{found[0]}"


class Cli:
    """Runs ``python -m legato.cli`` with ``LEGATO_HOME`` in a temporary directory."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd

    def __call__(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "LEGATO_STORE"}
        return subprocess.run(
            [sys.executable, "-m", "legato.cli", *args], input=stdin, capture_output=True,
            text=True, cwd=self.cwd, env={**environ, "LEGATO_HOME": str(self.home), **(env or {})},
            timeout=120, check=False,
        )

    def store(self) -> Store:
        return Store.open(self.home / "legato.db")

    def run_id(self, done: subprocess.CompletedProcess[str]) -> str:
        """The id ``legato map`` printed first on stderr (``run <id>``)."""
        words = done.stderr.split("\n", 1)[0].split()
        assert len(words) == 2, done.stderr
        assert words[0] == "run", done.stderr
        return words[1]


@pytest.fixture
def legato(tmp_path: Path) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(tmp_path / "home", work)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where the fixture components log their calls and look for marker files."""
    path = tmp_path / "calls"
    path.mkdir()
    return path


def items(path: Path, workdir: Path, count: int = 5) -> Path:
    path.write_text("".join(json.dumps({"x": x, "workdir": str(workdir)}) + "\n"
                            for x in range(count)))
    return path


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def calls(workdir: Path) -> Counter[int]:
    """How many times ``tally`` ran for each x."""
    return Counter(int(line) for line in (workdir / "calls.log").read_text().split())


def table(output: str, header: str) -> str:
    """The block of ``output`` (blocks are separated by blank lines) that starts with
    ``header``: a table, its header line first."""
    found = [block for block in output.split("\n\n") if block.startswith(header)]
    assert len(found) == 1, output
    return found[0]


def row(text: str, first: str) -> list[str]:
    """The cells of the table row that starts with ``first``."""
    found = [line.split() for line in text.splitlines() if line.split()[:1] == [first]]
    assert len(found) == 1, text
    return found[0]


@pytest.fixture
def failed_run(legato: Cli, workdir: Path, tmp_path: Path) -> str:
    """A recorded run of ``checked`` over x = 0..4: item 3 failed in ``tally`` (``broken``),
    items 1 and 3 failed once in ``shaky`` and were retried."""
    (workdir / "broken").touch()
    data = items(tmp_path / "data.jsonl", workdir)
    done = legato("map", f"{FIXTURE}:checked", str(data), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 1, done.stderr
    return legato.run_id(done)


# -- map records ---------------------------------------------------------------------------------


def test_map_records_the_run_with_what_resume_needs(
    legato: Cli, workdir: Path, tmp_path: Path
) -> None:
    data = items(tmp_path / "data.jsonl", workdir)
    out = tmp_path / "out.jsonl"
    done = legato("map", f"{FIXTURE}:tallied", str(data), "-o", str(out), "--window", "8")
    assert done.returncode == 0, done.stderr
    run_id = legato.run_id(done)
    with legato.store() as store:
        run = store.run(run_id)
        assert (run.pipeline, run.status, run.done, run.failed) == ("tallied", "ok", 5, 0)
        assert run.target == f"{FIXTURE}:tallied"
        assert run.inputs["source"] == str(data)
        assert run.options == {"window": 8, "on_error": "collect", "output": str(out)}
        assert sorted(i.index for i in store.items(run_id)) == [0, 1, 2, 3, 4]


def test_map_with_no_store_records_nothing(legato: Cli, workdir: Path, tmp_path: Path) -> None:
    data = items(tmp_path / "data.jsonl", workdir)
    done = legato("map", f"{FIXTURE}:tallied", str(data), "--no-store")
    assert done.returncode == 0, done.stderr
    assert "run " not in done.stderr
    listed = legato("runs")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""
    assert "no runs recorded yet" in listed.stderr


def test_map_store_option_records_into_that_database(
    legato: Cli, workdir: Path, tmp_path: Path
) -> None:
    data = items(tmp_path / "data.jsonl", workdir)
    url = f"sqlite:///{tmp_path / 'team.db'}"
    done = legato("map", f"{FIXTURE}:tallied", str(data), "--store", url)
    assert done.returncode == 0, done.stderr
    run_id = legato.run_id(done)
    assert run_id in legato("runs", "--store", url).stdout
    assert run_id not in legato("runs").stdout


def test_store_and_no_store_together_is_a_usage_error(legato: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"x": 1}\n')
    done = legato("map", f"{FIXTURE}:squared", str(data), "--store", "x.db", "--no-store")
    assert done.returncode == 2
    assert "--store and --no-store" in done.stderr


# -- runs ----------------------------------------------------------------------------------------


def test_runs_lists_runs_newest_first_with_status_and_item_counts(
    legato: Cli, failed_run: str, workdir: Path, tmp_path: Path
) -> None:
    data = items(tmp_path / "more.jsonl", workdir, count=2)
    newer = legato.run_id(legato("map", f"{FIXTURE}:tallied", str(data)))
    listed = legato("runs")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split() == ["RUN", "PIPELINE", "STATUS", "DONE", "FAILED", "STARTED",
                              "DURATION"]
    assert [line.split()[0] for line in lines] == [newer, failed_run]
    assert row(listed.stdout, failed_run)[1:5] == ["checked", "failed", "4", "1"]
    assert row(listed.stdout, newer)[1:5] == ["tallied", "ok", "2", "0"]
    limited = legato("runs", "--limit", "1")
    assert [line.split()[0] for line in limited.stdout.splitlines()[1:]] == [newer]


def test_runs_json_gives_one_object_per_run(legato: Cli, failed_run: str) -> None:
    listed = legato("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (run["id"], run["status"], run["done"], run["failed"]) == (failed_run, "failed", 4, 1)


# -- show ----------------------------------------------------------------------------------------


def test_show_counts_each_nodes_calls_retries_and_failures(legato: Cli, failed_run: str) -> None:
    shown = legato("show", failed_run[:6])  # a unique prefix will do
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["run", failed_run, "checked", "failed"]
    assert f"legato resume {failed_run}" in shown.stdout
    nodes = table(shown.stdout, "NODE")
    assert nodes.splitlines()[0].split() == ["NODE", "CALLS", "OK", "FAILED", "RETRIED",
                                             "CACHED", "P50", "MAX", "ATTEMPTS"]
    shaky, tally = row(nodes, "shaky"), row(nodes, "tally")
    assert shaky[1:6] + shaky[8:] == ["5", "5", "0", "2", "0", "2"]
    assert tally[1:6] + tally[8:] == ["5", "4", "1", "0", "0", "1"]


def test_show_groups_the_errors_and_points_to_the_tracebacks(
    legato: Cli, failed_run: str
) -> None:
    shown = legato("show", failed_run)
    errors = shown.stdout.split("\nerrors\n")[1]
    tally, shaky = fixture_line('raise ValueError("3 is broken")'), fixture_line(
        'raise RuntimeError(f"first try of {x}")')
    assert f"tally  ValueError at {tally}: 1 item failed (3)\n      item 3: 3 is broken\n" in (
        errors)
    assert (f"shaky  RuntimeError at {shaky}: 2 attempts retried\n"
            "      item 1: first try of 1\n      item 3: first try of 3\n") in errors
    assert "Traceback" not in shown.stdout
    assert f"legato show {failed_run} --errors" in errors


def test_show_groups_failures_by_exception_type_and_raising_line_with_a_few_examples(
    legato: Cli, tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"x": x}) + "\n" for x in range(13)))
    done = legato("map", f"{FIXTURE}:answered", str(data))
    assert done.returncode == 1
    shown = legato("show", legato.run_id(done))
    assert shown.returncode == 0, shown.stderr
    errors = shown.stdout.split("\nerrors\n")[1].splitlines()
    assert errors[:4] == [  # five items, one group: a count, which items, three examples
        f"  answer  ValueError at {fixture_line('raises: ValueError')}: 5 items failed "
        "(0, 3, 6, 9, 12)",
        "      item 0: no answer for 0", "      item 3: no answer for 3",
        "      item 6: no answer for 6"]
    assert f"  answer  KeyError at {fixture_line('raises: KeyError')}: 1 item failed (4)" in (
        errors)
    # raised inside the json module: placed at the user's line that called it
    assert (f"  answer  JSONDecodeError at {fixture_line('raises: JSONDecodeError')}: 1 item "
            "failed (5)") in errors
    assert len([line for line in errors if line.startswith("  answer")]) == 3


def test_show_counts_items_pending_after_a_stop_and_after_a_resume(
    legato: Cli, workdir: Path, tmp_path: Path
) -> None:
    (workdir / "broken").touch()
    data = items(tmp_path / "data.jsonl", workdir, count=5)
    stopped = legato("map", f"{FIXTURE}:tallied", str(data), "--on-error", "raise",
                     "--window", "1")  # one item at a time: the stop at item 3 leaves item 4
    assert stopped.returncode == 1
    run_id = legato.run_id(stopped)
    header = legato("show", run_id).stdout
    assert "items    3 done, 1 failed, 1 pending (of 5)" in header
    again = legato("resume", run_id)  # item 3 still fails: it stops there again
    assert again.returncode == 1
    shown = json.loads(legato("show", run_id, "--json").stdout)["items"]
    assert shown == {"done": 3, "failed": 1, "pending": 1, "total": 5}
    (workdir / "broken").unlink()
    assert legato("resume", run_id).returncode == 0, "the last resume finishes it"
    shown = json.loads(legato("show", run_id, "--json").stdout)["items"]
    assert shown == {"done": 5, "failed": 0, "pending": 0, "total": 5}
    assert "items    5 done, 0 failed\n" in legato("show", run_id).stdout


def test_show_errors_prints_each_failed_attempt_with_its_traceback(
    legato: Cli, failed_run: str
) -> None:
    shown = legato("show", failed_run, "--errors")
    assert shown.returncode == 0, shown.stderr
    assert "item 3 · tally · attempt 1" in shown.stdout
    assert "item 1 · shaky · attempt 1, retried" in shown.stdout
    assert shown.stdout.count("Traceback (most recent call last)") == 3
    assert 'raise ValueError("3 is broken")' in shown.stdout  # the component's own frame


def test_show_item_lists_that_items_executions(legato: Cli, failed_run: str) -> None:
    shown = legato("show", failed_run, "--item", "3")
    assert shown.returncode == 0, shown.stderr
    assert "items    4 done, 1 failed\n" in shown.stdout  # the whole run's, not the item's
    header, *lines = table(shown.stdout, "NODE").splitlines()
    assert header.split()[:3] == ["NODE", "ATTEMPT", "STATUS"]
    assert [line.split()[:3] for line in lines] == [
        ["shaky", "1", "retried"], ["shaky", "2", "ok"], ["tally", "1", "failed"]]
    missing = legato("show", failed_run, "--item", "9")
    assert missing.returncode == 2
    assert f"run {failed_run} has no item 9" in missing.stderr


def test_show_json_gives_the_run_and_its_node_summaries(legato: Cli, failed_run: str) -> None:
    shown = json.loads(legato("show", failed_run, "--json").stdout)
    assert shown["run"]["id"] == failed_run
    assert {node["node"]: (node["calls"], node["retried"]) for node in shown["nodes"]} == {
        "shaky": (5, 2), "tally": (5, 0)}


def test_show_an_unknown_run_says_how_to_list_them(legato: Cli, failed_run: str) -> None:
    shown = legato("show", "nosuchrun")
    assert shown.returncode == 1
    assert shown.stderr.startswith("error: no run 'nosuchrun'")
    assert "legato runs" in shown.stderr


# -- timeline ------------------------------------------------------------------------------------


def test_timeline_writes_a_chrome_trace_with_one_event_per_execution(
    legato: Cli, failed_run: str, tmp_path: Path
) -> None:
    out = tmp_path / "trace.json"
    done = legato("timeline", failed_run, "-o", str(out))
    assert done.returncode == 0, done.stderr
    trace = json.loads(out.read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    with legato.store() as store:
        run = store.run(failed_run)
        nodes = store.nodes(failed_run)
    assert len(events) == len(nodes) == 12  # 7 shaky attempts (2 retried) + 5 tally
    assert Counter(e["name"] for e in events) == {"shaky": 7, "tally": 5}
    by_start = sorted(nodes, key=lambda n: n.start)
    assert sorted(e["ts"] for e in events) == pytest.approx(
        [(n.start - run.started) * 1e6 for n in by_start], abs=1.0)
    lanes = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e.get("name") == "thread_name"}
    assert {e["tid"] for e in events} <= lanes.keys()
    assert "(no worker)" not in lanes.values()  # failed attempts too know where they ran
    assert "wrote" in done.stderr


def test_timeline_without_output_prints_the_trace(legato: Cli, failed_run: str) -> None:
    done = legato("timeline", failed_run)
    assert done.returncode == 0, done.stderr
    trace = json.loads(done.stdout)
    assert sum(1 for e in trace["traceEvents"] if e["ph"] == "X") == 12


def test_timeline_writes_a_gantt_chart_png(
    legato: Cli, failed_run: str, tmp_path: Path
) -> None:
    out = tmp_path / "timeline.png"
    done = legato("timeline", failed_run, "-o", str(out))
    assert done.returncode == 0, done.stderr
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5_000


def test_timeline_png_without_matplotlib_names_the_extra_to_install(
    legato: Cli, failed_run: str, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "matplotlib"  # an importable matplotlib that fails to import
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    done = legato("timeline", failed_run, "-o", str(tmp_path / "t.png"),
                  env={"PYTHONPATH": str(shadow.parent)})
    assert done.returncode == 1
    assert "needs matplotlib" in done.stderr
    assert "pip install 'legato[plot]'" in done.stderr
    assert not (tmp_path / "t.png").exists()


def test_timeline_refuses_to_write_a_png_to_a_terminal(legato: Cli, failed_run: str) -> None:
    import pty

    terminal, follower = pty.openpty()  # stdout a terminal, as when typed without -o
    try:
        environ = {k: v for k, v in os.environ.items() if k != "LEGATO_STORE"}
        done = subprocess.run(
            [sys.executable, "-m", "legato.cli", "timeline", failed_run, "--format", "png"],
            stdout=follower, stderr=subprocess.PIPE, text=True, cwd=legato.cwd,
            env={**environ, "LEGATO_HOME": str(legato.home)}, timeout=120, check=False)
        os.set_blocking(terminal, False)
        try:
            shown = os.read(terminal, 1 << 16)
        except OSError:  # nothing to read
            shown = b""
    finally:
        os.close(follower)
        os.close(terminal)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: refusing to write a PNG chart (binary data) to the terminal; write it to a "
        "file with -o timeline.png")
    assert shown == b""


def test_timeline_with_an_unknown_suffix_asks_for_a_format(
    legato: Cli, failed_run: str, tmp_path: Path
) -> None:
    done = legato("timeline", failed_run, "-o", str(tmp_path / "t.txt"))
    assert done.returncode == 2
    assert "name it .json, .png, .svg or .pdf" in done.stderr


# -- cache ---------------------------------------------------------------------------------------


def test_cache_ls_lists_entries_and_clear_removes_one_components(
    legato: Cli, tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"x": 1}\n{"x": 2}\n{"x": 3}\n')
    assert legato("map", f"{FIXTURE}:squared", str(data)).returncode == 0
    again = legato("map", f"{FIXTURE}:squared", str(data))
    assert [line["output"] for line in map(json.loads, again.stdout.splitlines())] == [1, 4, 9]
    cached = row(table(legato("show", legato.run_id(again)).stdout, "NODE"), "square")
    assert cached[1:6] == ["3", "0", "0", "0", "3"]  # every call a cache hit

    listed = legato("cache", "ls")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:4]] == ["square"] * 3
    assert "3 entries" in listed.stdout
    assert legato("cache", "clear", "--component", "other").stdout == (
        "removed 0 cache entries of other\n")
    assert legato("cache", "clear", "--component", "square").stdout == (
        "removed 3 cache entries of square\n")
    emptied = legato("cache", "ls")
    assert (emptied.returncode, emptied.stdout) == (0, "")
    assert "no cache entries" in emptied.stderr


# -- resume --------------------------------------------------------------------------------------


def test_resume_recomputes_only_the_failed_item_and_writes_every_result_once(
    legato: Cli, workdir: Path, tmp_path: Path
) -> None:
    (workdir / "broken").touch()
    data = items(tmp_path / "data.jsonl", workdir)
    out = tmp_path / "out.jsonl"
    first = legato("map", f"{FIXTURE}:tallied", str(data), "-o", str(out))
    assert first.returncode == 1
    run_id = legato.run_id(first)
    assert "ValueError: 3 is broken" in jsonl(out)[3]["error"]

    (workdir / "broken").unlink()
    resumed = legato("resume", run_id)  # from the recorded data, options and output
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {run_id} of tallied: 4 items recorded" in resumed.stderr
    assert jsonl(out) == [{"index": x, "output": 10 * x} for x in range(5)]
    assert calls(workdir) == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1}  # only item 3 computed again
    with legato.store() as store:
        run = store.run(run_id)
    assert (run.status, run.done, run.failed) == ("ok", 5, 0)


def test_a_run_stopped_by_on_error_raise_names_resume_and_resumes_to_the_end(
    legato: Cli, workdir: Path, tmp_path: Path
) -> None:
    (workdir / "broken").touch()
    data = items(tmp_path / "data.jsonl", workdir)
    out = tmp_path / "out.jsonl"
    stopped = legato("map", f"{FIXTURE}:tallied", str(data), "-o", str(out),
                     "--on-error", "raise")
    assert stopped.returncode == 1
    run_id = legato.run_id(stopped)
    assert "error: node 'tally'" in stopped.stderr
    assert f"legato resume {run_id} continues it" in stopped.stderr
    assert f"legato resume {run_id}" in legato("show", run_id).stdout

    (workdir / "broken").unlink()
    resumed = legato("resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert jsonl(out) == [{"index": x, "output": 10 * x} for x in range(5)]
    assert all(calls(workdir)[x] == 1 for x in (0, 1, 2))  # finished before the stop: reused


def test_resume_of_a_run_that_read_stdin_asks_for_the_items_again(
    legato: Cli, workdir: Path, tmp_path: Path
) -> None:
    (workdir / "broken").touch()
    text = items(tmp_path / "data.jsonl", workdir).read_text()
    first = legato("map", f"{FIXTURE}:tallied", "-", stdin=text)
    assert first.returncode == 1
    run_id = legato.run_id(first)
    refused = legato("resume", run_id)
    assert refused.returncode == 2
    assert f"legato resume {run_id} - < items.jsonl" in refused.stderr

    (workdir / "broken").unlink()
    resumed = legato("resume", run_id, "-", stdin=text)
    assert resumed.returncode == 0, resumed.stderr
    assert [json.loads(line) for line in resumed.stdout.splitlines()] == [
        {"index": x, "output": 10 * x} for x in range(5)]
    assert calls(workdir)[3] == 2


def test_resume_an_unknown_run_fails_naming_it(legato: Cli) -> None:
    done = legato("resume", "nosuchrun")
    assert done.returncode == 1
    assert "no run 'nosuchrun'" in done.stderr
