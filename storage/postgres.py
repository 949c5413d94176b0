"""PostgreSQL through asyncpg, behind the same interface as SQLite."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg

from base.failures import RepeatedFailure
from storage.db import (
    PROBE_SQL,
    DatabaseUnavailable,
    IntegrityError,
    Row,
    StorageFull,
    to_dollar_params,
)
from storage.plan import Plan, run_plan

T = TypeVar("T")


@lru_cache(maxsize=1024)
def _sql(sql: str) -> str:
    return to_dollar_params(sql)


# Errors that mean "the database cannot be used right now", not "this query is wrong":
# connection refused or lost, server shutting down or terminating us (57xxx), the
# database gone or closed to connections, out of connections or resources (53xxx).
# InternalClientError is the driver's own state machine confused by a connection that broke
# mid-operation ("cannot switch to state 15" after a restart): that connection is unusable.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.ObjectNotInPrerequisiteStateError,
)


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, asyncpg.UniqueViolationError | asyncpg.ForeignKeyViolationError):
        return IntegrityError(str(exc))
    if isinstance(exc, asyncpg.DiskFullError):
        return StorageFull(str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(str(exc) or type(exc).__name__)
    return exc


log = logging.getLogger("pitchey.storage")

# While PostgreSQL is away, asyncpg's pool retries its connection floor (min_size) and logs
# a traceback for every attempt. Those records are told as one story instead: the first,
# a count per interval, and the end when any connection is made again (the pool's `init`).
_floor_failures = RepeatedFailure(log, "PostgreSQL pool cannot reconnect")
_FLOOR_MESSAGE = "Failed to restore the pool connection floor"


class _FloorRetries(logging.Filter):
    """Routes asyncpg's floor-retry records through `_floor_failures` and drops them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(_FLOOR_MESSAGE):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        _floor_failures.failed(_describe(exc))
        return False


_floor_retries = _FloorRetries()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _connected(conn: Any) -> None:
    del conn  # any new connection means PostgreSQL answers again
    _floor_failures.succeeded()


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://")
        self._pool: Any = None
        self._min = min_size
        self._max = max_size

    async def connect(self) -> None:
        # Once per process (addFilter ignores a filter already there), before the pool exists.
        logging.getLogger("asyncpg.pool").addFilter(_floor_retries)
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                command_timeout=30,
                init=_connected,
            )
        except Exception as exc:
            raise _translate(exc) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def probe_write(self) -> None:
        await self.execute(PROBE_SQL)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._acquire() as conn:
            return await _PgConn(conn).execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._acquire() as conn:
            await _PgConn(conn).executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._acquire() as conn:
            return await _PgConn(conn).fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._acquire() as conn:
            return await _PgConn(conn).fetchrow(sql, *args)

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise DatabaseUnavailable("database pool is closed")
        try:
            conn = await self._pool.acquire(timeout=10)
        except Exception as exc:
            # Whatever stops us from getting a connection, the database is unavailable.
            raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc
        try:
            yield conn
        except BaseException as exc:
            if _broken(exc):
                # Back in the pool it would fail the next caller the same way.
                conn.terminate()
            raise
        finally:
            try:
                await self._pool.release(conn)
            except Exception:
                conn.terminate()

    async def run(self, plan: Plan[T]) -> T:
        async with self.transaction() as tx:
            return await run_plan(tx, plan)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgConn]:
        async with self._acquire() as conn:
            try:
                async with conn.transaction():
                    yield _PgConn(conn)
            except Exception as exc:
                # BEGIN or COMMIT failed (statements inside translate their own errors).
                translated = _translate(exc)
                if translated is exc:
                    raise
                raise translated from exc


def _broken(exc: BaseException) -> bool:
    """The error, or one it came from, leaves its connection unusable."""
    seen: BaseException | None = exc
    for _ in range(5):  # translated from, or raised while rolling back after, the real one
        if seen is None:
            return False
        if isinstance(seen, asyncpg.InternalClientError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _PgConn:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            status: str = await self._conn.execute(_sql(sql), *args)
        except Exception as exc:
            raise _translate(exc) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(_sql(sql), rows)
        except Exception as exc:
            raise _translate(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            rows = await self._conn.fetch(_sql(sql), *args)
        except Exception as exc:
            raise _translate(exc) from exc
        return [tuple(r) for r in rows]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None
