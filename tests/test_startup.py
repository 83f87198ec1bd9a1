"""Start-up: what ``import legato`` and ``legato --version`` load (in a fresh interpreter).

Which modules, never how long: times belong to the benchmarks (B6-import, B6-version). A module
listed here costs milliseconds to import and is needed only by some calls; import it inside the
function (or the optional module) that uses it.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

# Optional dependencies and interfaces: none is needed to define or run a pipeline.
THIRD_PARTY = ("pydantic", "typer", "click", "rich", "numpy", "sqlalchemy", "msgpack",
               "cloudpickle", "ray", "dask", "matplotlib")
# Standard modules of 2 ms or more that only some calls need (process workers, the store,
# async components, fingerprints).
STANDARD = ("asyncio", "concurrent.futures", "multiprocessing", "subprocess", "logging",
            "sqlite3", "hashlib", "pickle", "json", "shutil")


def _loaded(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(repr(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(ast.literal_eval(out.splitlines()[-1]))


@pytest.fixture(scope="module")
def after_import() -> set[str]:
    return _loaded("import legato")


@pytest.mark.parametrize("module", THIRD_PARTY + STANDARD)
def test_import_legato_does_not_load(module: str, after_import: set[str]) -> None:
    assert module not in after_import, (
        f"import legato loads {module}; import it where it is used")


def test_version_fast_path_answers_without_typer() -> None:
    code = ("import sys\nsys.argv = ['legato', '--version']\nfrom legato.cli import main\nmain()\n"
            "print('typer' in sys.modules, 'rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith("legato ")
    assert out[1] == "False False"


def test_cli_names_are_still_importable() -> None:
    loaded = _loaded("from legato.cli import app, dumps, jsonable, parse_inputs, UsageError")
    assert "typer" in loaded
