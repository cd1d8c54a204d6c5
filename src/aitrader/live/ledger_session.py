"""How the ledger's writes reach the database: each call its own transaction, or — inside
:meth:`LedgerSession.batch` — every call of one bar in one transaction.

A batch is the runner's unit of work: the bar's signals, intents, fills, risk verdicts, the
equity snapshot and the checkpoint commit together (or, on an error, none of them), so a crash
leaves the ledger at a bar boundary. ``durable=False`` (the paper venue, whose bars a resumed
run redoes identically) commits with ``synchronous=NORMAL`` in WAL mode: safe against a killed
process, a power loss may drop the last bars. A venue that acts outside the process (an
exchange) keeps ``synchronous=FULL`` and calls :meth:`LedgerSession.commit` before each request
it sends, so an order's intent is on disk before the order leaves (invariant 3), and no lock is
held while it waits on the network.

The batch belongs to the thread that opened it, and every ledger transaction of that thread
joins it (``write_transaction`` / ``read_transaction`` find it); calls from other threads (or
other processes: the control CLI, the API) use their own transactions, on other connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from aitrader.live.db import batched, joined, read_transaction, write_transaction


class LedgerSession:
    """Transactions of the ledger (a mixin of :class:`aitrader.live.ledger.Ledger`)."""

    engine: sa.Engine
    _held: sa.Connection | None = None  # the connection batches use
    _held_durable = True

    @contextmanager
    def batch(self, durable: bool = True) -> Iterator[None]:
        """Every ledger call inside in one transaction, committed at the end and rolled back
        when the block raises. A batch inside a batch joins it; calls of another thread while
        a batch is open run in their own transactions. The batches use one connection held for
        the ledger's life (no pool round trip, its ``synchronous`` set once)."""
        if joined(self.engine) is not None:
            yield
            return
        conn = self._hold(durable)
        with batched(self.engine, conn):
            try:
                yield
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _hold(self, durable: bool) -> sa.Connection:
        """The batches' connection, its ``synchronous`` level set for ``durable``."""
        if self._held is None:
            self._held = self.engine.connect()
            self._held.execution_options(ledger_write=True)
            self._held_durable = True  # the engine's default: FULL
        if self._held.dialect.name == "sqlite" and self._held_durable is not durable:
            _pragma(self._held, f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._held_durable = durable
        return self._held

    def _release(self) -> None:
        """Give the batches' connection back (the ledger closes)."""
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def commit(self) -> None:
        """Store what the open batch wrote so far and end its transaction (before an order is
        sent, before waiting on the network: no lock is held meanwhile); nothing to do outside
        a batch, where every call commits itself."""
        conn = joined(self.engine)
        if conn is not None and conn.in_transaction():
            conn.commit()

    def _version(self, conn: sa.Connection) -> tuple[int, int] | None:
        """On SQLite, the connection and its ``PRAGMA data_version``: the same on one
        connection until another connection commits a change (None on other databases)."""
        if conn.dialect.name != "sqlite":
            return None
        driver: Any = conn.connection.driver_connection
        return id(driver), int(driver.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """The connection of one write: the open batch's, else a transaction of its own."""
        with write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """The connection of one read: the open batch's (it sees the batch's writes), else a
        consistent snapshot of its own."""
        with read_transaction(self.engine) as conn:
            yield conn


def _pragma(conn: sa.Connection, statement: str) -> None:
    """A PRAGMA outside any transaction (SQLite refuses to change ``synchronous`` inside one)."""
    driver: Any = conn.connection.driver_connection
    driver.execute(statement)
