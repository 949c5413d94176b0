"""One small database interface with a SQLite and a PostgreSQL implementation.

SQL is written once with `?` placeholders; the PostgreSQL driver rewrites them
to `$n`. Every query therefore avoids literal question marks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from storage.plan import Plan
from storage.private import private_dir, touch_private
from storage.sqlite_thread import (
    SQLiteThread,
    Step,
    WriteTransaction,
    execute_step,
    executemany_step,
    plan_step,
    rollback,
    transact,
)

Row = tuple[Any, ...]
T = TypeVar("T")

log = logging.getLogger("pitchey.db")

# A write that changes nothing but must reach the log and commit: what a probe of
# "can we commit" needs (PostgreSQL writes WAL for it; SQLite writes the page).
PROBE_SQL = (
    "UPDATE schema_migrations SET applied_at = applied_at"
    " WHERE version = (SELECT MAX(version) FROM schema_migrations)"
)
# Below this much free space a SQLite write probe reports the disk full: a batch of messages
# needs room to grow the WAL, and a write that fits in space the WAL already holds proves little.
_SQLITE_MIN_FREE_BYTES = 256 * 1024


class DatabaseUnavailable(Exception):
    """The database could not be reached: callers answer 503, never acknowledge."""


class StorageFull(DatabaseUnavailable):
    """The disk (or database quota) is full: retryable once space is freed."""


class IntegrityError(Exception):
    """A unique or foreign-key constraint refused a write."""


class Connection(Protocol):
    async def execute(self, sql: str, *args: Any) -> int: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...


class Database(Connection, Protocol):
    dialect: str

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def probe_write(self) -> None:
        """Commit a write that changes nothing; raises what a real commit would."""
        ...

    def transaction(self) -> Any:
        """`async with db.transaction() as tx:` where tx is a Connection."""
        ...

    async def run(self, plan: Plan[T]) -> T:
        """Run `plan` (storage/plan.py) in a transaction of its own and return its result."""
        ...


def open_database(url: str) -> Database:
    if url.startswith("sqlite:"):
        return SQLiteDatabase(url)
    if url.startswith(("postgres://", "postgresql://")):
        from storage.postgres import PostgresDatabase

        return PostgresDatabase(url)
    raise ValueError(f"DATABASE_URL must start with sqlite:// or postgresql://, got {url!r}")


class SQLiteDatabase:
    """SQLite in WAL mode: one writer connection guarded by a lock, one reader.

    SQLite allows one writer at a time anyway; WAL lets the reader run beside it. The
    writer runs on our own thread so that a transaction's statements travel together
    (storage/sqlite_thread.py); reads go through aiosqlite.
    """

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        path = url.removeprefix("sqlite:").removeprefix("//")
        # sqlite:///relative/x.db -> "/relative/x.db" is absolute; sqlite:///./x.db is relative.
        if path.startswith("/./"):
            path = path[1:]
        self.path = path or ":memory:"
        self._write: SQLiteThread | None = None
        self._read: Any = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        import aiosqlite

        if self.path != ":memory:":
            # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
            # database file's mode, so all three stay private to this user.
            path = Path(self.path)
            private_dir(path.parent)
            for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
                if file == path or file.exists():
                    touch_private(file)
        self._write = SQLiteThread(
            self.path,
            (
                "PRAGMA journal_mode=WAL",
                # FULL: an acknowledged write survives kill -9 and power loss alike. Group
                # commit keeps the fsync count per message low.
                "PRAGMA synchronous=FULL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=5000",
            ),
        )
        await self._write.start()
        if self.path == ":memory:":
            # One connection holds an in-memory database: its reads go to the writer.
            self._read = self._write
        else:
            self._read = await aiosqlite.connect(self.path, isolation_level=None)
            await self._read.execute("PRAGMA busy_timeout=5000")

    async def close(self) -> None:
        if self._read is not None and self._read is not self._write:
            await self._read.close()
        if self._write is not None:
            await self._write.close()
        self._read = self._write = None

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._transact(execute_step(sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._transact(executemany_step(sql, list(rows)))

    async def run(self, plan: Plan[T]) -> T:
        return await self._transact(plan_step(plan))

    async def _transact(self, body: Step[T]) -> T:
        writer = self._writer()
        async with self._lock:
            try:
                # BEGIN, the statements, COMMIT (or ROLLBACK): one trip to the thread.
                return await writer.run(lambda conn: transact(conn, body))
            except Exception as exc:
                raise _translate(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        # Reads go to the reader connection, beside a writer that may be committing.
        return await _SQLiteReader(self._read).fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await _SQLiteReader(self._read).fetchrow(sql, *args)

    async def probe_write(self) -> None:
        if self.path != ":memory:":
            disk = os.statvfs(Path(self.path).parent)
            free = disk.f_bavail * disk.f_frsize
            if free < _SQLITE_MIN_FREE_BYTES:
                raise StorageFull(f"database or disk is full ({free} bytes free)")
        await self.execute(PROBE_SQL)

    def _writer(self) -> SQLiteThread:
        if self._write is None:
            raise DatabaseUnavailable("database is closed")
        return self._write

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriteTransaction]:
        writer = self._writer()
        async with self._lock:
            tx = WriteTransaction(writer, _translate)
            try:
                yield tx
            except BaseException:
                await self._rollback(writer, tx)
                raise
            else:
                try:
                    await tx.commit()
                except BaseException:
                    await self._rollback(writer, tx)
                    raise

    async def _rollback(self, writer: SQLiteThread, tx: WriteTransaction) -> None:
        if not tx.began:
            return  # nothing reached the database: there is nothing to undo
        try:
            await writer.run(rollback)
        except Exception as exc:
            log.warning("rollback failed: %s", exc)


class _SQLiteReader:
    """Reads on the reader connection (aiosqlite, or the writer's thread in memory)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            # One trip to the connection's thread, not three (execute, fetchall, close):
            # each trip wakes that thread and then the event loop.
            rows = await self._conn.execute_fetchall(sql, args)
        except Exception as exc:
            raise _translate(exc) from exc
        # No row_factory is set: sqlite3 hands back plain tuples already.
        return list(rows)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


def _translate(exc: Exception) -> Exception:
    import sqlite3

    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    if isinstance(exc, sqlite3.Error) and (
        getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL
        or "database or disk is full" in str(exc)
    ):
        return StorageFull(str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        return DatabaseUnavailable(str(exc))
    return exc


_PLACEHOLDER = re.compile(r"\?")


def to_dollar_params(sql: str) -> str:
    """Rewrite `?` placeholders to PostgreSQL's `$1, $2, ...`."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)
