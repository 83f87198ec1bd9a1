"""The run store, opened for reading only: the web UI never writes to it.

:class:`ReadOnlyStore` is not :class:`legato.store.Store`: that one creates a missing database,
migrates an old one and may write its signing key; this one does none of it. A SQLite file is
opened through a ``file:...?mode=ro`` URI (the driver refuses every write, and no journal mode
is set: that too would write); a PostgreSQL session is opened with
``default_transaction_read_only=on`` (the server refuses every write). Opening checks that the
database is a legato store (a ``legato_meta`` table and a schema revision this legato knows)
and raises :class:`StoreError` with one line saying what is wrong otherwise.

A store written by an older legato (an older revision) is read as it is: the columns it lacks
(``runs.mode``, ``nodes.batch``, ``items.inputs_ref``, added by revision 0004) read as NULL,
see :meth:`ReadOnlyStore.column`, and so does the ``graphs`` table's pipeline JSON. Values (a
failed item's inputs) are decoded with the store's own key, read from ``legato_meta``, from the
blob location the store uses.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from legato.errors import StoreError
from legato.store import schema
from legato.store.blobs import Blobs
from legato.store.database import normalise, translated
from legato.store.store import home
from legato.values import Codec

_SQLITE_MAGIC = b"SQLite format 3\x00"
# columns of revision 0004 a store at an older revision lacks: read as NULL there
OPTIONAL = {"runs": ("mode",), "nodes": ("batch",), "items": ("inputs_ref",)}
OPTIONAL_TABLES = ("graphs",)  # tables of revision 0004


class ReadOnlyStore:
    """A legato run store opened read-only (see the module docstring); thread-safe."""

    def __init__(self, url: str | Path | None = None, *, blobs: str | Path | None = None,
                 timeout: float = 10.0) -> None:
        chosen = url or os.environ.get("LEGATO_STORE") or home() / "legato.db"
        self.url = normalise(chosen)
        parsed = sa.engine.make_url(self.url)
        self.where = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        self.engine = _sqlite(parsed, timeout) if self.dialect == "sqlite" else _postgres(
            parsed, timeout, self.where)
        try:
            self.revision, self.columns, key = self._inspect()
        except BaseException:
            self.engine.dispose()
            raise
        self.codec = Codec(key) if key is not None else None
        self.blobs = Blobs(blobs or os.environ.get("LEGATO_BLOBS") or self._default_blobs())

    def _inspect(self) -> tuple[str, dict[str, frozenset[str]], bytes | None]:
        with self.reading() as connection:
            inspector = sa.inspect(connection)
            if not inspector.has_table("legato_meta"):
                raise StoreError(f"{self.where} is not a legato store (it has no legato_meta "
                                 "table); give the URL or path of a store legato wrote "
                                 "(--store, LEGATO_STORE)")
            found = None
            if inspector.has_table("alembic_version"):
                found = connection.exec_driver_sql(
                    "SELECT version_num FROM alembic_version").scalar()
            if found is None or str(found) not in schema.REVISIONS:
                raise StoreError(
                    f"the store {self.where} has schema revision {found}, which this legato "
                    f"does not know (it knows {', '.join(schema.REVISIONS)}): it was written by "
                    "a newer legato; upgrade legato (pip install -U legato)")
            columns = {table: frozenset(c["name"] for c in inspector.get_columns(table))
                       for table in OPTIONAL}
            self.tables = frozenset(t for t in OPTIONAL_TABLES if inspector.has_table(t))
            key = connection.execute(sa.select(schema.meta.c.value).where(
                schema.meta.c.key == "signing_key")).scalar()
        return str(found), columns, None if key is None else bytes.fromhex(key)

    def _default_blobs(self) -> Path:
        url = sa.engine.make_url(self.url)
        if self.dialect == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(str(url.database)).parent / "blobs"
        return home() / "blobs"

    def column(self, table: sa.Table, name: str) -> sa.ColumnElement[Any]:
        """``table``'s column ``name`` when this store has it, else NULL labelled ``name``
        (a store at a revision before the column was added)."""
        if name in self.columns.get(table.name, frozenset({name})):
            return table.c[name] if name in table.c else sa.column(name)
        return sa.null().label(name)

    def has_table(self, table: str) -> bool:
        """Whether this store has the (optional) ``table``."""
        return table in self.tables

    def has(self, table: str, name: str) -> bool:
        """Whether this store's ``table`` has the (optional) column ``name``."""
        return name in self.columns.get(table, frozenset({name}))

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction (driver errors become :class:`StoreError`)."""
        with translated(self.engine), self.engine.connect() as connection, connection.begin():
            yield connection

    def value(self, reference: str) -> Any:
        """The value a stored reference stands for (see :meth:`legato.store.Store.value`);
        :class:`StoreError` when it cannot be read (a missing blob, no signing key)."""
        if self.codec is None:
            raise StoreError(f"the store {self.where} has no signing key: it holds no values")
        if reference.startswith("="):
            return self.codec.decode(base64.b64decode(reference[1:]), name="an inline value")
        return self.codec.decode(self.blobs.get(reference), name=f"blob {reference}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ReadOnlyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ReadOnlyStore {self.where} revision {self.revision}>"


def _sqlite(url: sa.URL, timeout: float) -> Engine:
    database = url.database or ""
    if not database or database == ":memory:":
        raise StoreError("an in-memory SQLite database is not a store the UI can read: give "
                         "the path of a store file")
    path = Path(database)
    if not path.is_file():
        raise StoreError(f"no legato store at {path} (the file does not exist); give the path "
                         "or URL of a store (--store, LEGATO_STORE)")
    try:
        with path.open("rb") as stream:
            magic = stream.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror}") from exc
    if magic != _SQLITE_MAGIC:
        raise StoreError(f"{path} is not a legato store (not a SQLite database)")
    uri = f"file:{path.resolve().as_posix()}?mode=ro"
    engine = sa.create_engine("sqlite+pysqlite:///" + uri + "&uri=true",
                              connect_args={"timeout": timeout, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN issued below, as the store does
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.execute("PRAGMA query_only=1")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def _postgres(url: sa.URL, timeout: float, where: str) -> Engine:
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    url = url.update_query_dict(
        {"options": f"{options} -c default_transaction_read_only=on".strip()})
    try:
        engine = sa.create_engine(url, pool_pre_ping=True,
                                  connect_args={"connect_timeout": max(1, int(timeout))})
    except ImportError as exc:
        raise StoreError(f"the store {where} needs its driver: {exc}; "
                         "pip install 'psycopg[binary]'") from exc
    return engine


__all__ = ["OPTIONAL", "ReadOnlyStore"]
