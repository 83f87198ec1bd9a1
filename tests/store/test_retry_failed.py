"""Fix the bug, then retry the failed items: ``legato resume RUN --retry-failed`` reruns them
with the new code, reusing the recorded outputs of nodes whose code (and upstream code) did not
change; a run of changed code is refused without it, and one of changed wiring even with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import legato as lg
from legato.store import Store
from legato.store.lineage import lineage, path_of, shape

COUNT = 6
PIPELINE = '''
from pathlib import Path

import legato as lg


@lg.component(cpus=0)
def first(x: int, workdir: str) -> int:
    with Path(workdir, "first.log").open("a") as log:
        log.write(f"{x}\\n")
    return x + 1


@lg.component(cpus=0)
def second(y: int, workdir: str) -> int:
    with Path(workdir, "second.log").open("a") as log:
        log.write(f"{y}\\n")
    if y % 3 == 0:
        raise ValueError(f"bug on {y}")  # THE BUG
    return y * 10


@lg.pipeline
def stages(x: int, workdir: str) -> int:
    return second(first(x, workdir), workdir)
'''


def _legato(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legato.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _calls(path: Path) -> Counter[int]:
    return Counter(int(line) for line in path.read_text().split())


def test_retry_failed_reruns_failed_items_with_the_fixed_code_reusing_unchanged_nodes(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    source = tmp_path / "stages.py"
    source.write_text(PIPELINE)
    data, out, store_path = tmp_path / "items.jsonl", tmp_path / "out.jsonl", tmp_path / "s.db"
    data.write_text("".join(json.dumps({"x": x, "workdir": str(work)}) + "\n"
                            for x in range(COUNT)))
    env = {**os.environ, "LEGATO_BLOBS": str(tmp_path / "blobs")}
    first = _legato(["map", f"{source}:stages", str(data), "-o", str(out), "--store",
                     str(store_path), "--no-progress"], env)
    assert first.returncode == 1, first.stderr  # items 2 and 5 (y = 3, 6) failed
    run_id = first.stderr.split()[1]
    assert _calls(work / "first.log") == Counter(range(COUNT))
    assert _calls(work / "second.log") == Counter(range(1, COUNT + 1))

    source.write_text(PIPELINE.replace('raise ValueError(f"bug on {y}")  # THE BUG',
                                       "y = y  # fixed"))
    refused = _legato(["resume", run_id, "--store", str(store_path), "--no-progress"], env)
    assert refused.returncode == 1
    assert "code or wiring changed" in refused.stderr
    assert f"legato resume {run_id} --retry-failed" in refused.stderr

    retried = _legato(["resume", run_id, "--retry-failed", "--store", str(store_path),
                       "--no-progress"], env)
    assert retried.returncode == 0, retried.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line.get("output") for line in lines] == [(x + 1) * 10 for x in range(COUNT)]
    assert _calls(work / "first.log") == Counter(range(COUNT))  # not one first() again
    again = _calls(work / "second.log") - Counter(range(1, COUNT + 1))
    assert again == Counter({3: 1, 6: 1})  # the fixed stage ran for the failed items only
    with Store.open(store_path, blobs=tmp_path / "blobs") as store:
        run = store.run(run_id)
        assert (run.status, run.done, run.failed) == ("ok", COUNT, 0)


def _named(name: str, fn: object) -> lg.Component:
    return lg.component(name=name)(fn)  # type: ignore[call-overload,no-any-return]


def _abc(stage_a: lg.Component, stage_b: lg.Component, stage_c: lg.Component) -> lg.Pipeline:
    @lg.pipeline(name="abc")
    def abc(x: int) -> dict[str, int]:
        return {"b": stage_b(stage_a(x)), "c": stage_c(x)}

    return abc


def test_a_node_downstream_of_changed_code_is_not_reused_though_its_own_code_is_the_same(
) -> None:
    def old_a(x: int) -> int:
        return x + 1

    def new_a(x: int) -> int:
        return x + 2

    def b(y: int) -> int:
        return y * 10

    def c(x: int) -> int:
        return x

    stage_b = _named("stage_b", b)
    variants = []
    for code in (old_a, new_a):
        variants.append(_abc(_named("stage_a", code), stage_b, _named("stage_c", c)).graph)
    before, after = variants
    assert shape(before) == shape(after)
    changed = {path for path, digest in lineage(after).items()
               if lineage(before)[path] != digest}
    assert changed == {"stage_a", "stage_b"}  # stage_c reads nothing that changed
    assert path_of("each[3]/score") == "each/score"


def test_retry_failed_refuses_a_pipeline_whose_wiring_changed(
    store: Store,
) -> None:
    @lg.component
    def flaky(x: int) -> int:
        raise ValueError("down")

    @lg.pipeline(name="rewire")
    def before(x: int) -> int:
        return flaky(x)

    assert isinstance(next(iter(before.map([1], store=store, on_error="collect"))), lg.Failure)
    run_id = store.runs()[0].id

    @lg.component
    def steady(x: int) -> int:
        return x

    @lg.pipeline(name="rewire")
    def after(x: int) -> int:
        return steady(flaky(x))

    with pytest.raises(lg.StoreError, match=r"wiring of pipeline 'rewire' changed.*new run"):
        list(after.map([1], store=store, resume=run_id, retry_failed=True))
