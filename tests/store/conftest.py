"""The store's contract suite runs on two databases: a SQLite file, and a real PostgreSQL
server (``LEGATO_TEST_POSTGRES``, a URL; ``scripts/postgres.sh`` installs and starts one). Each
PostgreSQL test gets a schema of its own, dropped afterwards. Without the variable the
PostgreSQL half is skipped, saying how to run it; CI sets it, so there it always runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.store import Store

POSTGRES = os.environ.get("LEGATO_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'legato.db'}"
        return
    if not POSTGRES:
        pytest.skip("set LEGATO_TEST_POSTGRES=postgresql://... (scripts/postgres.sh starts one)")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """An open store over ``store_url``, its blobs in the test's directory."""
    with Store.open(store_url, blobs=tmp_path / "blobs") as opened:
        yield opened
