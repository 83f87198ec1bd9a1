"""Connecting to the store's database, and keeping its schema current.

A URL picks the database: ``sqlite:///path/legato.db`` (the default, in ``.legato/``) or
``postgresql://user:pass@host/db`` (through psycopg 3). SQLite runs in WAL mode with a busy
timeout, so several processes can record into one file at once; every transaction that writes
takes the write lock when it begins (``BEGIN IMMEDIATE``), so none fails half-way on a lock.

The schema is versioned with Alembic (``migrations/``). Opening a store reads its revision:
the newest one, and nothing more is done; an older one is upgraded (one process at a time:
SQLite's write lock, PostgreSQL's advisory lock); one this legato does not know, written by a
newer legato, is refused. Errors of the driver are turned into :class:`StoreError` here, once,
with what to do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from legato.errors import StoreError
from legato.store.schema import HEAD, REVISIONS

_SQLITE_MAGIC = b"SQLite format 3\x00"
_MIGRATION_LOCK = 7_204_265  # PostgreSQL advisory lock id for migrations: "legato" in digits


def normalise(url: str | Path) -> str:
    """A SQLAlchemy URL for what a user wrote: a URL, or a path to a SQLite file."""
    text = str(url)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    return text


def connect(url: str, *, timeout: float = 30.0) -> Engine:
    """An engine for ``url`` (see :func:`normalise`), its schema checked and migrated."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite(parsed, timeout)
    else:
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True,
                                      connect_args={"connect_timeout": max(1, int(timeout))})
        except ImportError as exc:
            raise StoreError(f"the store {parsed.render_as_string()} needs its driver: "
                             f"{exc}; pip install 'psycopg[binary]'") from exc
    try:
        _migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _sqlite(url: sa.URL, timeout: float) -> Engine:
    database = url.database or ""
    if database and database != ":memory:":
        path = Path(database)
        try:
            _private(path)
        except OSError as exc:
            raise StoreError(f"cannot create the store {path}: {exc}") from exc
        if path.exists() and path.stat().st_size > 0:
            with path.open("rb") as stream:
                if stream.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                    raise StoreError(f"{path} is not a SQLite database (corrupt, or another "
                                     "kind of file); move it aside and legato starts a new store")
    engine = sa.create_engine(url, connect_args={"timeout": timeout})

    @sa.event.listens_for(engine, "connect")
    def configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("writes", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600; SQLite gives its journal and
    WAL files the same mode) in a directory of its owner only (0700) when legato makes it. A
    directory or file that is there already keeps its mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: on SQLite it holds the write lock from its first statement."""
    with translated(engine), engine.connect() as connection:
        connection = connection.execution_options(writes=True)
        with connection.begin():
            yield connection


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction."""
    with translated(engine), engine.connect() as connection, connection.begin():
        yield connection


@contextlib.contextmanager
def translated(engine: Engine) -> Iterator[None]:
    """Turn the driver's errors into :class:`StoreError` naming the database and what to do."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise StoreError(describe(engine, exc)) from exc


def describe(engine: Engine, exc: sa.exc.DBAPIError) -> str:
    where = engine.url.render_as_string(hide_password=True)
    reason = str(exc.orig).strip() if exc.orig is not None else str(exc)
    if "locked" in reason or "busy" in reason:
        return (f"the store {where} is locked by another process and stayed locked past the "
                f"wait ({reason}); retry when it is done, or raise the timeout")
    if "not a database" in reason or "malformed" in reason:
        return (f"the store {where} is corrupt ({reason}); move the file aside and legato "
                "starts a new store")
    if isinstance(exc, sa.exc.OperationalError):
        return f"cannot use the store {where}: {reason}"
    return f"the store {where} failed: {reason}"


def revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database (None: a new, empty database)."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row[0])


def _migrate(engine: Engine) -> None:
    with reading(engine) as connection:
        current = revision(connection)
    _check_known(engine, current)
    if current == HEAD:
        return
    with writing(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        current = revision(connection)  # another process may have migrated meanwhile
        _check_known(engine, current)
        if current != HEAD:
            upgrade(connection, HEAD)


def _check_known(engine: Engine, current: str | None) -> None:
    if current is not None and current not in REVISIONS:
        where = engine.url.render_as_string(hide_password=True)
        raise StoreError(
            f"the store {where} has schema revision {current}, which this legato does not know "
            f"(it knows up to {HEAD}): it was written by a newer legato. Upgrade legato "
            "(pip install -U legato) or use another store (--store, LEGATO_STORE)")


def upgrade(connection: Connection, target: str) -> None:
    """Run Alembic's migrations on ``connection`` (in its transaction) up to ``target``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    command.upgrade(config, target)


def upsert(connection: Connection, table: sa.Table, rows: list[dict[str, Any]],
            keys: list[str], *, update: bool = True) -> None:
    """Insert rows; a row whose key exists replaces it (``update``) or is skipped."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(table)
    if update:
        changed = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        statement = statement.on_conflict_do_update(index_elements=keys, set_=changed)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    connection.execute(statement, rows)
