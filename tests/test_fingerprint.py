"""Fingerprints by code, not by place: a component's fingerprint (its cache key's first part, and
what a run's graph fingerprint is built from) follows its normalised source, its same-module
helpers, ``version=``, ``weights=`` and constructor arguments; never the file's path, the
module's name or line numbers.

Every case writes real files into temporary directories and loads them by path with
``legato.loader`` (as ``legato map FILE:PIPELINE`` does), or imports them as modules.
"""

from __future__ import annotations

import importlib
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import legato as lg
from harness import WAIT
from legato.fingerprint import code_digest, normalised_source
from legato.loader import load_module

ROOT = Path(__file__).resolve().parents[1]
GATED = ROOT / "tests" / "fixtures" / "cli_gated.py"

BASE = '''
import legato as lg


def helper(x):
    return inner(x) + 1


def inner(x):
    return x * 2


@lg.component(version="1", weights="w-1", cpus=1)
def work(x: int) -> int:
    """Doubles, then adds one."""
    # a comment
    return helper(x)


@lg.component
class Scale:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor


@lg.pipeline
def pipe(x: int) -> int:
    return Scale(3)(work(x))
'''

_counter = iter(range(1_000_000))


def _load(tmp_path: Path, source: str, name: str = "pipes.py") -> ModuleType:
    """``source`` written to a fresh directory under ``tmp_path`` and loaded by path."""
    directory = tmp_path / f"d{next(_counter)}"
    directory.mkdir()
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return load_module(str(path))


def _work(tmp_path: Path, source: str = BASE) -> str:
    return _load(tmp_path, source).work.fingerprint()


# -- what keeps a fingerprint ------------------------------------------------------------------


@pytest.mark.parametrize("edit", [
    pytest.param(lambda s: s.replace("# a comment", "# another comment, longer"), id="comment"),
    pytest.param(lambda s: s.replace("Doubles, then adds one.", "Other words."), id="docstring"),
    pytest.param(lambda s: "\n\n# a header\n\n" + s, id="line-numbers"),
    pytest.param(lambda s: s.replace("cpus=1", "cpus=2"), id="scheduling-option"),
    pytest.param(lambda s: s.replace("return x * 2", "return x * 2  # why"), id="helper-comment"),
])
def test_fingerprint_is_kept_by_edits_that_cannot_change_a_result(
    tmp_path: Path, edit: Callable[[str], str]
) -> None:
    assert _work(tmp_path, edit(BASE)) == _work(tmp_path)


def test_a_file_moved_to_another_directory_keeps_every_fingerprint(tmp_path: Path) -> None:
    first = _load(tmp_path, BASE)
    moved = tmp_path / "elsewhere" / "deeper"
    moved.mkdir(parents=True)
    shutil.copy(first.__file__ or "", moved / "renamed.py")
    second = load_module(str(moved / "renamed.py"))
    assert first.__name__ != second.__name__  # loaded under names made from their paths
    assert second.work.fingerprint() == first.work.fingerprint()
    assert second.pipe.graph.fingerprint() == first.pipe.graph.fingerprint()


def test_a_file_loaded_by_path_and_imported_as_a_module_has_one_graph_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fp_imported.py").write_text(textwrap.dedent(BASE))
    by_path = load_module(str(tmp_path / "fp_imported.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fp_imported", raising=False)
    imported = importlib.import_module("fp_imported")
    assert imported.__name__ == "fp_imported" != by_path.__name__
    assert imported.pipe.graph.fingerprint() == by_path.pipe.graph.fingerprint()
    assert "/" not in "".join(node_id for node_id, _ in imported.pipe.graph.walk())


# -- what changes it ---------------------------------------------------------------------------


@pytest.mark.parametrize("edit", [
    pytest.param(lambda s: s.replace("return helper(x)", "return helper(x) - 1"), id="body"),
    pytest.param(lambda s: s.replace('version="1"', 'version="2"'), id="version"),
    pytest.param(lambda s: s.replace('weights="w-1"', 'weights="w-2"'), id="weights"),
    pytest.param(lambda s: s.replace("return inner(x) + 1", "return inner(x) + 2"),
                 id="helper"),
    pytest.param(lambda s: s.replace("return x * 2", "return x * 3"), id="helper-of-helper"),
])
def test_fingerprint_changes_with_code_version_weights_and_helpers(
    tmp_path: Path, edit: Callable[[str], str]
) -> None:
    changed = edit(BASE)
    assert changed != BASE
    assert _work(tmp_path, changed) != _work(tmp_path)


def test_a_class_component_follows_its_methods_and_its_constructor_arguments(
    tmp_path: Path,
) -> None:
    module = _load(tmp_path, BASE)
    changed = _load(tmp_path, BASE.replace("return x * self.factor", "return x + self.factor"))
    assert changed.Scale.fingerprint() != module.Scale.fingerprint()
    assert module.Scale(3).fingerprint() != module.Scale(4).fingerprint()
    assert module.Scale(3).fingerprint() == module.Scale(3).fingerprint()


def test_only_code_of_the_same_module_is_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load(tmp_path, BASE)

    def digest_with(helper: Callable[..., object]) -> str:
        monkeypatch.setattr(module, "helper", helper)
        return code_digest(module.work.target)

    # a name bound to another module's function adds nothing: which one it is does not count
    assert digest_with(textwrap.dedent) == digest_with(textwrap.indent)
    # a same-module function does
    assert digest_with(module.inner) != digest_with(textwrap.dedent)


def test_legato_decorator_is_left_out_however_it_is_imported_and_others_stay(
    tmp_path: Path,
) -> None:
    plain = BASE.replace("@lg.component(version=\"1\", weights=\"w-1\", cpus=1)",
                         "@component(version=\"1\", weights=\"w-1\")")
    plain = plain.replace("import legato as lg",
                          "import legato as lg\nfrom legato import component")
    assert plain != BASE
    assert _work(tmp_path, plain) == _work(tmp_path)
    wrapped = plain.replace("def work(", "@functools.lru_cache\ndef work(").replace(
        "import legato as lg", "import functools\nimport legato as lg")
    assert _work(tmp_path, wrapped) != _work(tmp_path)  # another decorator may change a result


def test_normalised_source_drops_docstrings_comments_and_legato_decorator(tmp_path: Path) -> None:
    module = _load(tmp_path, BASE)
    text = normalised_source(module.work.target)
    assert text is not None
    assert "Doubles" not in text
    assert "comment" not in text
    assert "version" not in text
    assert "helper" in text


def test_code_without_source_counts_by_its_bytecode() -> None:
    spaces: list[dict[str, Any]] = [{}, {}, {}]
    for space, body in zip(spaces, ["x + 1", "x + 1", "x + 2"], strict=True):
        exec(f"def f(x):\n    return {body}\n", space)  # no file: no source to read
    one, same, other = (space["f"] for space in spaces)
    assert normalised_source(one) is None
    assert code_digest(one) == code_digest(same) != code_digest(other)


# -- the tests above catch a fingerprint that ignores code or weights --------------------------


def _check_code_and_weights(tmp_path: Path) -> None:
    """What the tests above assert, as one function that mutants of the fingerprint must fail."""
    assert _work(tmp_path, BASE.replace("return helper(x)", "return -helper(x)")) != \
        _work(tmp_path)
    assert _work(tmp_path, BASE.replace('weights="w-1"', 'weights="w-2"')) != _work(tmp_path)


def test_the_checks_pass_on_the_real_fingerprint(tmp_path: Path) -> None:
    _check_code_and_weights(tmp_path)


@pytest.mark.parametrize("mutant", ["ignores-code", "ignores-weights"])
def test_the_checks_catch_a_fingerprint_that_ignores_code_or_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutant: str
) -> None:
    if mutant == "ignores-code":
        digests = importlib.import_module("legato.fingerprint")  # looked up on each use
        monkeypatch.setattr(digests, "code_digest", lambda target: target.__qualname__)
    else:
        def without_weights(self: lg.Component) -> str:
            return f"{code_digest(self.target)}:{self.options.version}"

        monkeypatch.setattr(lg.Component, "fingerprint", without_weights)
    with pytest.raises(AssertionError):
        _check_code_and_weights(tmp_path)


# -- across processes: the CLI's run resumed from Python, the cache shared between copies ------


@pytest.fixture
def gated_module(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """tests/fixtures/cli_gated.py copied to a directory of its own, importable by name."""
    where = tmp_path / "checkout"
    where.mkdir()
    shutil.copy(GATED, where / "fp_gated.py")
    sys.path.insert(0, str(where))
    try:
        yield where / "fp_gated.py", "fp_gated"
    finally:
        sys.path.remove(str(where))
        sys.modules.pop("fp_gated", None)


def test_a_map_started_by_the_cli_resumes_from_python_importing_the_module(
    tmp_path: Path, gated_module: tuple[Path, str]
) -> None:
    from legato.store import Store

    path, name = gated_module
    gate, count = 20, 30
    work = tmp_path / "work"
    work.mkdir()
    items = [{"x": x, "workdir": str(work)} for x in range(count)]
    data, store_path = tmp_path / "items.jsonl", tmp_path / "s.db"
    data.write_text("".join(json.dumps(item) + "\n" for item in items))
    first = subprocess.Popen(
        [sys.executable, "-m", "legato.cli", "map", f"{path}:gated", str(data), "-o",
         str(tmp_path / "out.jsonl"), "--store", str(store_path), "--no-progress"],
        stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None
        run_id = first.stderr.readline().split()[1]  # "run <id>", printed before any item
        with Store.open(store_path) as store:
            deadline = time.monotonic() + WAIT
            while len([i for i in store.items(run_id) if i.status == "ok"]) < gate:
                assert first.poll() is None, first.stderr.read()
                assert time.monotonic() < deadline, "the first run never recorded its items"
                time.sleep(0.02)  # polling the store, which the run's writer fills
        first.send_signal(signal.SIGKILL)  # items from the gate on are held: never finished
        first.wait(timeout=WAIT)
    finally:
        if first.poll() is None:
            first.kill()
        if first.stderr is not None:
            first.stderr.close()
    before = Counter(int(line) for line in (work / "calls.log").read_text().split())

    (work / "open").touch()
    module = importlib.import_module(name)  # imported, not loaded by path as the CLI did
    results = list(module.gated.map(items, store=str(store_path), resume=run_id))

    assert results == [f"sq={x * x}" for x in range(count)]
    after = Counter(int(line) for line in (work / "calls.log").read_text().split())
    assert all(after[x] == before[x] for x in range(gate)), "finished items computed again"
    assert set(after) == set(range(count))
    with Store.open(store_path) as store:
        assert store.run(run_id).status == "ok"


def test_two_checkouts_of_a_pipeline_share_cache_entries(tmp_path: Path) -> None:
    source = '''
    from pathlib import Path

    import legato as lg


    @lg.component(cache=True, executor="inline")
    def square(x: int, log: str) -> int:
        with Path(log).open("a") as out:
            out.write(f"{x}\\n")
        return x * x


    @lg.pipeline
    def squares(x: int, log: str) -> int:
        return square(x, log)
    '''
    log, store = tmp_path / "calls.log", str(tmp_path / "cache.db")
    items = [{"x": x, "log": str(log)} for x in range(5)]
    first = _load(tmp_path, source, "one.py")
    assert list(first.squares.map(items, store=store)) == [x * x for x in range(5)]
    assert len(log.read_text().split()) == 5
    second = _load(tmp_path, source.replace("return x * x", "return x * x  # same"), "two.py")
    assert list(second.squares.map(items, store=store)) == [x * x for x in range(5)]
    assert len(log.read_text().split()) == 5  # every call answered from the cache
    third = _load(tmp_path, source.replace("return x * x", "return x * x + 0"), "three.py")
    list(third.squares.map(items, store=store))
    assert len(log.read_text().split()) == 10  # changed code: computed again
