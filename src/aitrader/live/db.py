"""Opening the ledger database: SQLite in WAL mode by default, any SQLAlchemy URL accepted,
schema migrations applied in order on open."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import event

from aitrader.live.records import LedgerError, utc_now
from aitrader.live.schema import CURRENT_VERSION, MIGRATIONS, schema_version

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL: given as is when it has a scheme, else a SQLite file path."""
    text = str(target)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def create_ledger_engine(target: str | Path) -> sa.Engine:
    """An engine for ``target``; on SQLite: WAL, ``synchronous=FULL``, foreign keys, a busy
    timeout, and ``BEGIN IMMEDIATE`` for write transactions (no lock upgrade deadlocks)."""
    url = sa.make_url(database_url(target))
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if url.database in (None, "", ":memory:"):
        raise LedgerError("the ledger needs a file (or a server URL), not an in-memory database")
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_use_lifo=True,  # one thread gets the same connection back (its data_version holds)
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        mode = _wal(cursor)
        if str(mode).lower() != "wal":
            raise LedgerError(f"could not switch the ledger to WAL mode (got {mode!r})")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _wal(cursor: Any) -> str:
    """``PRAGMA journal_mode=WAL``, tried again for up to the busy timeout: SQLite answers
    "database is locked" at once, without its busy handler, while another process is switching
    the same new file to WAL (two processes opening one new ledger)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return str(cursor.fetchone()[0])
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get("ledger_write", False)
    driver: Any = conn.connection.driver_connection  # the driver: no statement overhead
    driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


_BATCHES: WeakKeyDictionary[sa.Engine, tuple[int, sa.Connection]] = WeakKeyDictionary()
"""The batch open on an engine (see :meth:`aitrader.live.ledger.Ledger.batch`) and its thread."""


def joined(engine: sa.Engine) -> sa.Connection | None:
    """The connection of the batch open on ``engine`` in this thread, if any."""
    found = _BATCHES.get(engine)
    return found[1] if found is not None and found[0] == threading.get_ident() else None


@contextmanager
def batched(engine: sa.Engine, conn: sa.Connection) -> Iterator[None]:
    """While inside, this thread's transactions on ``engine`` join ``conn``'s."""
    _BATCHES[engine] = (threading.get_ident(), conn)
    try:
        yield
    finally:
        del _BATCHES[engine]


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: all of it is stored, or none of it (inside a batch: the
    batch's, committed with it)."""
    conn = joined(engine)
    if conn is not None:
        yield conn
        return
    with engine.connect() as conn:
        conn.execution_options(ledger_write=True)
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One consistent snapshot for reads (inside a batch: the batch's, which sees its writes)."""
    conn = joined(engine)
    if conn is not None:
        yield conn
        return
    with engine.connect() as conn, conn.begin():
        yield conn


def current_version(conn: sa.Connection) -> int:
    """The highest applied migration (0 for a new database)."""
    if not sa.inspect(conn).has_table(schema_version.name):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(found or 0)


def migrate(engine: sa.Engine, target: int = CURRENT_VERSION) -> int:
    """Apply the migrations above the database's version up to ``target``; returns the version.

    Each migration and its ``schema_version`` row commit together, so a crash mid-way leaves
    the database at the last completed version. The version is read again under each
    migration's write lock: another process opening the same ledger at the same moment may
    have applied it already (it is then skipped, not applied twice).
    """
    with write_transaction(engine) as conn:
        schema_version.create(conn, checkfirst=True)
    with read_transaction(engine) as conn:
        version = _checked(current_version(conn))
    for migration in MIGRATIONS:
        if version < migration.version <= target:
            with write_transaction(engine) as conn:
                version = _checked(current_version(conn))
                if version >= migration.version:
                    continue  # applied meanwhile by another process
                migration.apply(conn)
                conn.execute(
                    schema_version.insert().values(
                        version=migration.version,
                        description=migration.description,
                        applied_at=utc_now(),
                    )
                )
            log.info("ledger migrated", extra={"version": migration.version})
            version = migration.version
    return version


def _checked(version: int) -> int:
    if version > CURRENT_VERSION:
        raise LedgerError(
            f"ledger schema version {version} is newer than this aitrader ({CURRENT_VERSION}); "
            "upgrade aitrader"
        )
    return version
