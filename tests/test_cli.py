"""The ``legato`` command line, run as a real subprocess against tests/fixtures/cli_pipelines.py:
run (inputs from --input and from stdin), map (malformed lines, failing items, events), check,
graph, and the errors a user meets (unknown pipeline, missing file, --debug)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import legato as legato_package
from legato.cli import jsonable, parse_inputs
from legato.cli.failures import exception_type, raising_place
from legato.errors import SpecError
from legato.loader import load

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = "tests/fixtures/cli_pipelines.py"


def legato(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m legato.cli ARGS`` to completion; stdin is a pipe (never a TTY)."""
    return subprocess.run(
        [sys.executable, "-m", "legato.cli", *args], input=stdin, capture_output=True,
        text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=60, check=False,
    )


def fixture_line(marker: str) -> str:
    """``tests/fixtures/cli_pipelines.py:LINE`` of the one fixture line holding ``marker``."""
    lines = (ROOT / FIXTURE).read_text().splitlines()
    found = [n for n, text in enumerate(lines, 1) if marker in text]
    assert len(found) == 1, f"marker {marker!r} on lines {found}"
    return f"{FIXTURE}:{found[0]}"


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- run -------------------------------------------------------------------------------------


def test_run_coerces_input_strings_to_the_port_types() -> None:
    done = legato("run", f"{FIXTURE}:add_one", "--input", "x=3")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 4


def test_run_reads_a_json_object_from_stdin_and_prints_dataclasses_as_objects() -> None:
    done = legato("run", f"{FIXTURE}:describe", stdin='{"text": "hello big world"}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "report": {"text": "hello big world", "words": 3, "scores": [0.5, 0.5, 0.5]}}


def test_run_reads_an_input_from_a_json_file_with_at(tmp_path: Path) -> None:
    (tmp_path / "text.json").write_text('"one two"')
    done = legato("run", f"{FIXTURE}:describe", "-i", f"text=@{tmp_path / 'text.json'}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["report"]["words"] == 2


def test_run_with_an_ill_typed_input_fails_naming_the_input() -> None:
    done = legato("run", f"{FIXTURE}:add_one", "--input", "x=three")
    assert done.returncode == 1
    assert done.stderr.startswith("error: input 'x' expects int, got str 'three'")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_run_without_inputs_says_how_to_give_them() -> None:
    done = legato("run", f"{FIXTURE}:add_one")
    assert done.returncode == 1
    assert "missing input 'x: int'" in done.stderr
    assert "--input NAME=VALUE" in done.stderr


def test_run_with_a_malformed_input_option_is_a_usage_error() -> None:
    done = legato("run", f"{FIXTURE}:add_one", "--input", "x")
    assert done.returncode == 2
    assert "error: --input expects NAME=VALUE" in done.stderr


def test_run_reports_a_failing_component_with_its_node_and_place() -> None:
    done = legato("run", f"{FIXTURE}:lucky", "-i", "x=13")
    assert done.returncode == 1
    assert "node 'refuse_thirteen'" in done.stderr
    assert fixture_line("return increment(refuse_thirteen(x))") in done.stderr
    assert "ValueError: 13 is unlucky" in done.stderr
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback_with_its_cause() -> None:
    done = legato("--debug", "run", f"{FIXTURE}:lucky", "-i", "x=13")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert 'raise ValueError("13 is unlucky")' in done.stderr  # the component's own frame
    assert done.stderr.rstrip().splitlines()[-1].startswith("error: node 'refuse_thirteen'")


def test_values_of_classes_defined_in_the_file_cross_to_worker_processes_and_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "boxes.py").write_text(
        "from typing import NamedTuple\n"
        "import legato as lg\n\n"
        "class Box:\n"
        "    def __init__(self, value: int) -> None:\n"
        "        self.value = value\n\n"
        "class Pair(NamedTuple):\n"
        "    low: int\n"
        "    high: int\n\n"
        "@lg.component(executor='process')\n"
        "def box(x: int) -> Box:\n"
        "    return Box(x)\n\n"
        "@lg.component(executor='process')\n"
        "def unbox(b: Box) -> Pair:\n"
        "    return Pair(b.value, 2 * b.value)\n\n"
        "@lg.pipeline\n"
        "def boxes(x: int) -> Pair:\n"
        "    return unbox(box(x))\n"
    )
    done = legato("run", "boxes.py:boxes", "-i", "x=4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"low": 4, "high": 8}


# -- map -------------------------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Five items: good, not JSON, raising in a component, not an object, good (and a blank)."""
    path = tmp_path / "data.jsonl"
    path.write_text('{"x": 1}\n{"x": \n{"x": 13}\n\n[1, 2]\n{"x": "5"}\n')
    return path


def test_map_writes_every_item_in_order_and_fails_only_the_bad_ones(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    done = legato("map", f"{FIXTURE}:lucky", str(data), "-o", str(out))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "2 done, 3 failed"
    lines = jsonl(out)
    assert [line["index"] for line in lines] == [0, 1, 2, 3, 4]
    assert lines[0] == {"index": 0, "output": 2}
    assert lines[4] == {"index": 4, "output": 6}
    not_json, raised, not_object = lines[1], lines[2], lines[3]
    assert not_json["error"].startswith(f"{data}:2: not valid JSON")
    assert not_json["line"] == 2
    assert raised["node"] == "refuse_thirteen"
    assert "ValueError: 13 is unlucky" in raised["error"]
    assert raised["line"] == 3
    assert not_object["error"] == (
        f"{data}:5: expected a JSON object of input names to values, got list")


def test_map_names_the_line_of_an_item_whose_inputs_do_not_fit(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"x": 1}\n{"x": "one"}\n')
    done = legato("map", f"{FIXTURE}:add_one", str(data))
    assert done.returncode == 1
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first == {"index": 0, "output": 2}
    assert second["error"].startswith(f"{data}:2: input 'x' expects int, got str 'one'")


def test_map_fails_a_line_that_is_not_utf8_and_runs_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_bytes(b'{"x": 1}\n{"x": "\xff"}\n{"x": 2}\n')
    done = legato("map", f"{FIXTURE}:add_one", str(data))
    assert done.returncode == 1
    first, bad, last = (json.loads(line) for line in done.stdout.splitlines())
    assert (first["output"], last["output"]) == (2, 3)
    assert bad["error"] == f"{data}:2: not UTF-8 text: invalid start byte at byte 7"


def test_map_on_error_skip_leaves_failed_items_out(data: Path, tmp_path: Path) -> None:
    done = legato("map", f"{FIXTURE}:lucky", str(data), "--on-error", "skip")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"index": 0, "output": 2}, {"index": 4, "output": 6}]
    assert "2 done, 3 failed" in done.stderr


def test_map_on_error_raise_stops_at_the_first_failed_item(data: Path, tmp_path: Path) -> None:
    done = legato("map", f"{FIXTURE}:lucky", str(data), "--on-error", "raise")
    assert done.returncode == 1
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"index": 0, "output": 2}]
    assert f"error: {data}:2: not valid JSON" in done.stderr


def test_map_reads_items_from_stdin() -> None:
    done = legato("map", f"{FIXTURE}:add_one", "-", stdin='{"x": 1}\n{"x": 2}\n')
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["output"] for line in done.stdout.splitlines()] == [2, 3]


def test_map_events_writes_each_node_execution(data: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    done = legato("map", f"{FIXTURE}:lucky", str(data), "--events", str(events))
    assert done.returncode == 1
    records = jsonl(events)
    nodes = sorted((r["item"], r["node"], r["status"]) for r in records if "node" in r)
    assert nodes == [
        (0, "increment", "ok"), (0, "refuse_thirteen", "ok"),
        (2, "refuse_thirteen", "failed"),
        (4, "increment", "ok"), (4, "refuse_thirteen", "ok"),
    ]
    items = sorted((r["item"], r["status"]) for r in records if r.get("event") == "item")
    assert items == [(0, "ok"), (1, "failed"), (2, "failed"), (3, "failed"), (4, "ok")]
    assert records[-1]["event"] == "run"
    assert (records[-1]["done"], records[-1]["failed"]) == (2, 3)


def test_map_with_a_missing_data_file_is_a_usage_error(tmp_path: Path) -> None:
    done = legato("map", f"{FIXTURE}:lucky", str(tmp_path / "absent.jsonl"))
    assert done.returncode == 2
    assert "error: no such data file" in done.stderr


# -- parity with the Python API: --resources, --cache, --unordered ---------------------------

PARITY = "tests/fixtures/cli_parity.py"


def parity_items(path: Path, workdir: Path, count: int = 4) -> Path:
    path.write_text("".join(json.dumps({"x": x, "workdir": str(workdir)}) + "\n"
                            for x in range(count)))
    return path


def logged_calls(workdir: Path) -> list[int]:
    """The x of each call the fixture components made, in order."""
    log = workdir / "calls.log"
    return sorted(int(x) for x in log.read_text().split()) if log.exists() else []


def test_a_custom_resource_is_declared_with_resources_on_map_and_run(tmp_path: Path) -> None:
    home = {"LEGATO_HOME": str(tmp_path / "home")}
    data = parity_items(tmp_path / "data.jsonl", tmp_path)
    refused = legato("map", f"{PARITY}:transcribed", str(data), env=home)
    assert refused.returncode == 1
    assert "asr" in refused.stderr  # the check: a resource nobody declared
    done = legato("map", f"{PARITY}:transcribed", str(data), "--resources", "asr=1", env=home)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["output"] for line in done.stdout.splitlines()] == [
        f"text {x}" for x in range(4)]
    one = legato("run", f"{PARITY}:transcribed", "-i", "x=7", "-i", f"workdir={tmp_path}",
                 "--resources", "asr=2", env=home)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == "text 7"


@pytest.mark.parametrize("given", ["asr", "asr=", "asr=many", "asr=-1", "=1", "asr=nan"])
def test_a_malformed_resources_option_is_a_usage_error(given: str, tmp_path: Path) -> None:
    done = legato("run", f"{PARITY}:transcribed", "-i", "x=1", "-i", f"workdir={tmp_path}",
                  "--resources", given)
    assert done.returncode == 2
    assert "error: --resources expects NAME=AMOUNT with AMOUNT a number >= 0" in done.stderr


def test_cache_all_answers_every_component_from_the_store(tmp_path: Path) -> None:
    home = {"LEGATO_HOME": str(tmp_path / "home")}
    data = parity_items(tmp_path / "data.jsonl", tmp_path)
    for _ in range(2):
        done = legato("map", f"{PARITY}:doubled", str(data), "--cache", "all", env=home)
        assert done.returncode == 0, done.stderr
        assert [json.loads(line)["output"] for line in done.stdout.splitlines()] == [0, 2, 4, 6]
    assert logged_calls(tmp_path) == [0, 1, 2, 3]  # the second run computed nothing
    default = legato("map", f"{PARITY}:doubled", str(data), env=home)
    assert default.returncode == 0, default.stderr
    assert logged_calls(tmp_path) == [0, 0, 1, 1, 2, 2, 3, 3]  # not declared cache=True


def test_cache_none_computes_even_a_component_declared_cached(tmp_path: Path) -> None:
    home = {"LEGATO_HOME": str(tmp_path / "home")}
    data = parity_items(tmp_path / "data.jsonl", tmp_path, count=2)
    for _ in range(2):
        assert legato("map", f"{PARITY}:tripled", str(data), env=home).returncode == 0
    assert logged_calls(tmp_path) == [0, 1]  # declared cache=True: the second run reused it
    none = legato("map", f"{PARITY}:tripled", str(data), "--cache", "none", env=home)
    assert none.returncode == 0, none.stderr
    one = legato("run", f"{PARITY}:tripled", "-i", "x=1", "-i", f"workdir={tmp_path}",
                 "--cache", "none", env=home)
    assert (one.returncode, json.loads(one.stdout)) == (0, 3)
    assert logged_calls(tmp_path) == [0, 0, 1, 1, 1]


def test_map_unordered_writes_each_result_as_its_item_finishes(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    written = f"{out}.partial"  # where results go until the run is over
    data = tmp_path / "data.jsonl"  # item 0 finishes only once item 1's result is written
    data.write_text(json.dumps({"x": 0, "path": written, "text": '"index": 1'}) + "\n"
                    + json.dumps({"x": 1, "path": "", "text": ""}) + "\n"
                    + json.dumps({"x": 2, "path": written, "text": '"index": 1'}) + "\n")
    done = legato("map", f"{PARITY}:in_turn", str(data), "-o", str(out), "--unordered",
                  "--no-store")
    assert done.returncode == 0, done.stderr
    lines = jsonl(out)
    assert lines[0] == {"index": 1, "output": 1}
    assert sorted(lines[1:], key=lambda line: line["index"]) == [
        {"index": 0, "output": 0}, {"index": 2, "output": 2}]


def test_resume_runs_with_the_resources_and_cache_the_run_was_given(tmp_path: Path) -> None:
    home = {"LEGATO_HOME": str(tmp_path / "home")}
    (tmp_path / "broken").touch()
    data = parity_items(tmp_path / "data.jsonl", tmp_path, count=5)
    out = tmp_path / "out.jsonl"
    first = legato("map", f"{PARITY}:transcribed", str(data), "-o", str(out), "--resources",
                   "asr=1", "--cache", "none", "--unordered", env=home)
    assert first.returncode == 1
    run_id = first.stderr.split()[1]
    shown = json.loads(legato("show", run_id, "--json", env=home).stdout)
    assert shown["run"]["options"] == {
        "window": 256, "on_error": "collect", "output": str(out), "resources": {"asr": 1.0},
        "cache": "none", "ordered": False}
    (tmp_path / "broken").unlink()
    resumed = legato("resume", run_id, env=home)  # no --resources: the recorded ones
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(line["index"] for line in jsonl(out)) == [0, 1, 2, 3, 4]
    assert logged_calls(tmp_path) == [0, 1, 2, 3, 3, 4]  # only item 3 again


# -- check and graph -------------------------------------------------------------------------


def test_check_says_ok_with_the_node_count() -> None:
    done = legato("check", f"{FIXTURE}:lucky")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok: pipeline 'lucky' (2 nodes)\n"


def test_check_lists_each_problem_with_its_node_and_place() -> None:
    done = legato("check", f"{FIXTURE}:broken")
    assert done.returncode == 1
    assert "pipeline 'broken' has 1 problem" in done.stderr
    place = fixture_line("return increment(shout(text))")
    assert f"node 'increment' ({place}): input 'x' expects int, gets str from 'shout'" in (
        done.stderr)


def test_graph_prints_mermaid_by_default() -> None:
    done = legato("graph", f"{FIXTURE}:lucky")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("flowchart LR\n")
    assert "n_refuse_thirteen -->|x| n_increment" in done.stdout


def test_graph_writes_json_to_the_output_file(tmp_path: Path) -> None:
    done = legato("graph", f"{FIXTURE}:lucky", "-o", str(tmp_path / "g.json"))
    assert done.returncode == 0, done.stderr
    drawn = json.loads((tmp_path / "g.json").read_text())
    assert [node["id"] for node in drawn["nodes"]] == ["refuse_thirteen", "increment"]


def test_graph_svg_without_graphviz_says_to_install_it(tmp_path: Path) -> None:
    done = legato("graph", f"{FIXTURE}:lucky", "--format", "svg", env={"PATH": str(tmp_path)})
    assert done.returncode == 1
    assert "install Graphviz (apt-get install graphviz" in done.stderr
    assert "--format mermaid" in done.stderr


def test_graph_svg_pipes_dot_text_through_graphviz(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "dot"  # stands in for Graphviz: echoes its flag and input
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\n"
                    "sys.stdout.write('<svg ' + sys.argv[1] + '>' + sys.stdin.read() + '</svg>')\n")
    fake.chmod(0o755)
    out = tmp_path / "graph.svg"
    done = legato("graph", f"{FIXTURE}:lucky", "-o", str(out),
                  env={"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    svg = out.read_text()
    assert svg.startswith('<svg -Tsvg>digraph "lucky"')


# -- loading ---------------------------------------------------------------------------------


def test_unknown_pipeline_name_lists_the_pipelines_of_the_file() -> None:
    done = legato("check", f"{FIXTURE}:add_on")
    assert done.returncode == 2
    assert "has no pipeline 'add_on' (did you mean 'add_one'?)" in done.stderr
    assert "4 pipelines: add_one, lucky, describe, broken" in done.stderr


def test_an_object_that_is_not_a_pipeline_is_refused() -> None:
    done = legato("check", f"{FIXTURE}:not_a_pipeline")
    assert done.returncode == 2
    assert "'not_a_pipeline' in tests/fixtures/cli_pipelines.py is a component" in done.stderr


def test_missing_file_is_a_usage_error() -> None:
    done = legato("run", "tests/fixtures/absent.py:p")
    assert done.returncode == 2
    assert done.stderr == "error: no such file: tests/fixtures/absent.py\n"


def test_a_file_that_fails_to_import_is_shown_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text("import legato\n\nvalue = (\n")
    (tmp_path / "deps.py").write_text("import legato\nimport no_such_module_anywhere\n")
    syntax = legato("check", "typo.py:p", cwd=tmp_path)
    assert syntax.returncode == 1
    assert syntax.stderr.startswith("error: typo.py:3: SyntaxError: '(' was never closed")
    missing = legato("check", "deps.py:p", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        "error: deps.py:2: ModuleNotFoundError: No module named 'no_such_module_anywhere'")


def test_a_file_imports_its_siblings(tmp_path: Path) -> None:
    (tmp_path / "parts.py").write_text(
        "import legato as lg\n\n@lg.component\ndef double(x: int) -> int:\n    return 2 * x\n")
    (tmp_path / "main.py").write_text(
        "import legato as lg\nfrom parts import double\n\n"
        "@lg.pipeline\ndef twice(x: int) -> int:\n    return double(x)\n")
    done = legato("run", str(tmp_path / "main.py"), "-i", "x=21")  # the only pipeline: no name
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 42


def test_a_dotted_module_path_is_imported_from_the_current_directory(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(
        "import legato as lg\n\n@lg.component\ndef hello(name: str) -> str:\n"
        "    return 'hello ' + name\n\n@lg.pipeline\ndef greet(name: str) -> str:\n"
        "    return hello(name)\n")
    done = legato("run", "shop.flows:greet", "-i", "name=ada", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "hello ada"
    absent = legato("run", "shop.nothing:greet", cwd=tmp_path)
    assert absent.returncode == 2
    assert "no such file or module: shop.nothing" in absent.stderr


def test_version() -> None:
    done = legato("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("legato ")


def test_load_refuses_a_spec_without_a_file() -> None:
    with pytest.raises(SpecError, match="expected FILE:PIPELINE"):
        load(":agent")


# -- in-process helpers ----------------------------------------------------------------------


class Point(NamedTuple):
    x: int
    y: int


@dataclass
class Labelled:
    label: str
    point: Point


def test_jsonable_turns_results_into_plain_json_data() -> None:
    from pydantic import BaseModel

    class Model(BaseModel):
        name: str
        tags: set[str]

    value = {
        "point": Point(1, 2),
        "labelled": Labelled("a", Point(3, 4)),
        "array": np.arange(4, dtype=np.float32).reshape(2, 2),
        "scalar": np.int64(7),
        "model": Model(name="m", tags={"t"}),
        "path": Path("/tmp/x"),
        3: (1, 2),
    }
    assert jsonable(value) == {
        "point": {"x": 1, "y": 2},
        "labelled": {"label": "a", "point": {"x": 3, "y": 4}},
        "array": [[0.0, 1.0], [2.0, 3.0]],
        "scalar": 7,
        "model": {"name": "m", "tags": ["t"]},
        "path": "/tmp/x",
        "3": [1, 2],
    }
    json.dumps(jsonable(value))


def test_parse_inputs_keeps_strings_and_reads_at_files(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text('{"a": [1, 2]}')
    assert parse_inputs(["x=3", "y=a=b", "z=@@home", f"doc=@{tmp_path / 'v.json'}"]) == {
        "x": "3", "y": "a=b", "z": "@home", "doc": {"a": [1, 2]}}


def _traceback(*frames: str, last: str = "ValueError: no") -> str:
    """A traceback's text with these ``FILE:LINE:FUNCTION`` frames, outermost first."""
    lines = ["Traceback (most recent call last):"]
    for frame in frames:
        path, line, function = frame.rsplit(":", 2)
        lines += [f'  File "{path}", line {line}, in {function}', "    code()"]
    return "\n".join([*lines, last])


LEGATO_FILE = str(Path(legato_package.__file__).parent / "backends" / "local.py")


@pytest.mark.parametrize(("frames", "place"), [
    pytest.param([f"{LEGATO_FILE}:349:_execute_plain", "/home/ada/agent.py:31:answer"],
                 "/home/ada/agent.py:31", id="the user's frame, not legato's"),
    pytest.param([f"{LEGATO_FILE}:349:_execute_plain", "/home/ada/agent.py:31:answer",
                  "/home/ada/.venv/lib/python3.11/site-packages/numpy/core.py:9:dot"],
                 "/home/ada/agent.py:31", id="the user's line that called a library"),
    pytest.param([f"{json.__file__}:346:loads"], f"{json.__file__}:346",
                 id="no user frame: outside legato"),
    pytest.param([f"{LEGATO_FILE}:349:_execute_plain", "<dynamic-code>:6:boom"],
                 "line 6 in boom", id="a function sent by value to a worker process"),
    pytest.param([f"{LEGATO_FILE}:349:_execute_plain"], f"{LEGATO_FILE}:349",
                 id="only legato: its innermost frame"),
])
def test_raising_place_is_the_innermost_frame_in_user_code(
    frames: list[str], place: str
) -> None:
    assert raising_place(_traceback(*frames)) == place


def test_raising_place_is_shown_relative_to_the_pipeline_directory() -> None:
    text = _traceback("/home/ada/agent/steps/answer.py:4:answer")
    assert raising_place(text, relative_to=Path("/home/ada/agent")) == "steps/answer.py:4"
    assert raising_place(None) == ""


def test_exception_type_comes_from_the_tracebacks_last_line_or_the_message() -> None:
    assert exception_type(None, _traceback(last="json.decoder.JSONDecodeError: bad")) == (
        "JSONDecodeError")
    assert exception_type("node 'a' (a.py:1) failed on item 3, attempt 1: KeyError: 'k'",
                          None) == "KeyError"
    assert exception_type("item 3: data.jsonl:4: not valid JSON", None) == ""
