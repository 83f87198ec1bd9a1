"""``legato ui`` as a real subprocess: it serves a store, and refuses one that is not."""

from __future__ import annotations

import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from ui_support import Recorded

ROOT = Path(__file__).resolve().parents[2]


def legato(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legato.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=dict(os.environ), timeout=60, check=False)


def test_ui_serves_the_store_until_sigterm(recorded: Recorded) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "legato.cli", "ui", "--store", str(recorded.path), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr],
                              daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"legato ui did not say where it listens (exit {process.poll()})")
            found = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert str(recorded.path) in line
        page = httpx.get(f"{url}/api/runs", timeout=30).json()
        assert {run["id"] for run in page["runs"]} >= {recorded.run}
        assert httpx.get(f"{url}/runs/nosuchrun", timeout=30).status_code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def test_a_store_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    result = legato("ui", "--store", str(missing), "--port", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"no legato store at {missing}" in result.stderr
    assert not missing.exists()


def test_a_database_that_is_not_a_store_exits_2(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
    result = legato("ui", "--store", str(other), "--port", "0")
    assert result.returncode == 2
    assert "is not a legato store" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_postgresql_server_that_is_not_there_exits_2() -> None:
    pytest.importorskip("psycopg")
    result = legato("ui", "--store", "postgresql://nobody:x@127.0.0.1:1/none", "--port", "0")
    assert result.returncode == 2
    assert "cannot use the store" in result.stderr
    assert result.stderr.count("\n") == 1
