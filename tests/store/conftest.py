"""The store's contract suite runs on two databases: a SQLite file, and a real PostgreSQL
server (``LEGATO_TEST_POSTGRES``, a URL; ``scripts/postgres.sh`` installs and starts one). Each
PostgreSQL test gets a schema of its own, dropped afterwards. Without the variable the
PostgreSQL half is skipped, saying how to run it; CI sets it, so there it always runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import postgres_schema
from legato.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'legato.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """An open store over ``store_url``, its blobs in the test's directory."""
    with Store.open(store_url, blobs=tmp_path / "blobs") as opened:
        yield opened
