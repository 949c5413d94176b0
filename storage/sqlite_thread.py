"""A sqlite3 connection owned by one thread, to which a whole step travels in one trip.

aiosqlite sends every statement to its thread on its own, and each trip costs two thread
wake-ups: about 30 µs of CPU for a `SELECT 1` here, 65 µs for a statement after a commit's
fsync (benchmarks/README.md, "Where the misses come from"). A group commit of messages is
eight statements; on this thread the statements that return nothing wait and travel with
the next one that does, so the same commit is two or three trips. The SQLite writer uses
it; reads stay on aiosqlite, one statement per trip being all a read needs.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from storage.plan import Plan, run_plan_sync

T = TypeVar("T")
log = logging.getLogger("pitchey.db")
Row = tuple[Any, ...]
Step = Callable[[sqlite3.Connection], T]

_BEGIN = "BEGIN IMMEDIATE"


class SQLiteThread:
    """Runs callables against one sqlite3 connection, in order, on its own thread."""

    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self._path = path
        self._pragmas = tuple(pragmas)
        self._jobs: queue.SimpleQueue[tuple[Step[Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
        self._thread.start()
        await self.run(self._configure)

    async def close(self) -> None:
        if self._thread is None:
            return
        await self.run(lambda conn: conn.close())
        self._jobs.put(None)
        thread, self._thread = self._thread, None
        await asyncio.to_thread(thread.join)

    async def run(self, step: Step[T]) -> T:
        """`step(connection)` on the thread; its result or its exception comes back."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((step, future))
        return await future

    async def execute_fetchall(self, sql: str, args: Sequence[Any]) -> list[Row]:
        # The reader's interface (aiosqlite's name): an in-memory database has one
        # connection, so its reads come here too.
        return await self.run(lambda conn: _fetchall(conn, sql, args))

    def _configure(self, conn: sqlite3.Connection) -> None:
        for pragma in self._pragmas:
            conn.execute(pragma).close()

    def _serve(self) -> None:
        # The connection is made here so that only this thread ever touches it.
        conn: sqlite3.Connection | None = None
        loop = self._loop
        assert loop is not None
        while True:
            job = self._jobs.get()
            if job is None:
                return
            step, future = job
            try:
                if conn is None:
                    conn = sqlite3.connect(self._path, isolation_level=None)
                result = step(conn)
            except BaseException as exc:  # every failure goes back to the caller
                _settle(loop, future, None, exc)
            else:
                _settle(loop, future, result, None)


class WriteTransaction:
    """One write transaction on a `SQLiteThread`, begun and committed in the trips it makes.

    `executemany` returns nothing, so it waits and travels with the next statement whose
    answer is needed (`execute`, `fetch`, or the COMMIT); an error it raises then comes
    back from that call, which inside a transaction ends the transaction all the same.
    """

    def __init__(self, thread: SQLiteThread, translate: Callable[[Exception], Exception]) -> None:
        self._thread = thread
        self._translate = translate
        self._waiting: list[tuple[str, list[Sequence[Any]]]] = []
        self.began = False

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._trip(lambda conn: _rowcount(conn, sql, args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._waiting.append((sql, list(rows)))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._trip(lambda conn: _fetchall(conn, sql, args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def commit(self) -> None:
        await self._trip(lambda conn: conn.execute("COMMIT").close())

    async def _trip(self, last: Step[T]) -> T:
        begin, self.began = not self.began, True
        waiting, self._waiting = self._waiting, []

        def step(conn: sqlite3.Connection) -> T:
            if begin:
                conn.execute(_BEGIN).close()
            for sql, rows in waiting:
                conn.executemany(sql, rows).close()
            return last(conn)

        try:
            return await self._thread.run(step)
        except Exception as exc:
            raise self._translate(exc) from exc


def transact(conn: sqlite3.Connection, body: Step[T]) -> T:
    """`body(conn)` in a transaction of its own, on the thread that owns `conn`."""
    conn.execute(_BEGIN).close()
    try:
        result = body(conn)
        conn.execute("COMMIT").close()
    except BaseException:
        try:
            rollback(conn)
        except Exception as exc:
            log.warning("rollback failed: %s", exc)
        raise
    return result


def rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR): a ROLLBACK
    # then fails with "no transaction is active" and would replace the error that counts.
    if conn.in_transaction:
        conn.execute("ROLLBACK").close()


def plan_step(plan: Plan[T]) -> Step[T]:
    return lambda conn: run_plan_sync(conn, plan)


def execute_step(sql: str, args: Sequence[Any]) -> Step[int]:
    return lambda conn: _rowcount(conn, sql, args)


def executemany_step(sql: str, rows: Sequence[Sequence[Any]]) -> Step[None]:
    return lambda conn: conn.executemany(sql, rows).close()


def _rowcount(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> int:
    cursor = conn.execute(sql, args)
    count = cursor.rowcount
    cursor.close()
    return count


def _fetchall(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    cursor = conn.execute(sql, args)
    rows: list[Row] = cursor.fetchall()
    cursor.close()
    return rows


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        # The caller may have been cancelled while the step ran: its answer is dropped.
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop closed while the step ran: nobody is waiting any more
