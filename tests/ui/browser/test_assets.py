"""The web UI's shipped assets (``src/legato/ui/static``) are exactly what the sources in
``ui/`` build to: ``npm ci`` from the lock file and ``npm run build`` in a copy of ``ui/``,
into a folder of the test's own, give the same bytes. Users never need Node; this test is how
CI knows the committed bundle is not stale. Skipped only when npm is missing (CI has it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ROOT / "ui"
SHIPPED = ROOT / "src" / "legato" / "ui" / "static"
ASSETS = ("index.html", "app.js", "app.css")


@pytest.mark.slow
def test_shipped_assets_match_sources(tmp_path: Path) -> None:
    command = shutil.which("npm")
    if command is None:
        pytest.skip("npm is not installed: the shipped assets cannot be rebuilt to compare")
    work = tmp_path / "ui"
    shutil.copytree(SOURCES, work, ignore=shutil.ignore_patterns("node_modules"))
    out = tmp_path / "built"
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "build", "--", "--outdir", str(out)]):
        done = subprocess.run([command, *step], cwd=work, capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, f"npm {' '.join(step)} failed:\n{done.stdout}\n{done.stderr}"
    built = sorted(p.name for p in out.iterdir())
    assert built == sorted(ASSETS)
    stale = [name for name in ASSETS
             if (out / name).read_bytes() != (SHIPPED / name).read_bytes()]
    assert not stale, (f"src/legato/ui/static/{', '.join(stale)} differ from what ui/ builds: "
                       "run `cd ui && npm ci && npm run build` and commit the result")
