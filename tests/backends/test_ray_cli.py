"""``legato run`` and ``legato map`` with ``--backend ray``: the same pipeline file, run on a
Ray instance the command starts (and stops), or refused with a clear message."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = "tests/fixtures/cli_pipelines.py"


def legato(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m legato.cli ARGS`` to completion, with no Ray cluster to find by itself."""
    return subprocess.run([sys.executable, "-m", "legato.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=180, check=False,
                          env={**os.environ, "RAY_ADDRESS": ""})


def test_map_with_backend_ray_runs_a_pipeline_file_on_a_ray_instance(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in ("a b", "c d e")))
    out, events = tmp_path / "out.jsonl", tmp_path / "events.jsonl"
    done = legato("map", f"{FIXTURE}:describe", str(data), "-o", str(out), "--no-store",
                  "--events", str(events), "--backend", "ray")
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line)["output"] for line in out.read_text().splitlines()]
    assert [r["report"]["words"] for r in results] == [2, 3]
    executors = {json.loads(line).get("executor") for line in events.read_text().splitlines()}
    assert executors - {None} == {"ray"}


def test_run_with_an_address_that_does_not_answer_fails_fast() -> None:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        start = time.monotonic()
        done = legato("run", f"{FIXTURE}:add_one", "-i", "x=1", "--backend", "ray",
                      "--address", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert f"error: no Ray cluster answers at '127.0.0.1:{port}'" in done.stderr
    assert time.monotonic() - start < 30


def test_an_address_without_backend_ray_is_a_usage_error() -> None:
    done = legato("run", f"{FIXTURE}:add_one", "-i", "x=1", "--address", "auto")
    assert done.returncode == 2
    assert "--address names a Ray cluster; give --backend ray with it" in done.stderr
