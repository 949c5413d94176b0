"""A transaction written once as a generator of statements, run by whichever database.

The plan yields `Fetch` (and is sent back the rows) or `WriteMany` (and is sent None), then
returns its result. It does no I/O itself, so each database runs it its own way: SQLite
runs a whole plan on its writer thread in one trip (storage/sqlite_thread.py), where
awaiting each statement would cost two thread wake-ups per statement; PostgreSQL awaits
each statement on its connection (`run_plan`). The group commit of messages is written
this way: it is the hottest write there is.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Fetch:
    sql: str
    args: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class WriteMany:
    sql: str
    rows: Sequence[Sequence[Any]]


Statement = Fetch | WriteMany
# What a plan is sent back: the rows of a Fetch, None after a WriteMany.
Plan = Generator[Statement, list[Row] | None, T]


class _Connection(Protocol):
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...


async def run_plan(tx: _Connection, plan: Plan[T]) -> T:
    """Run `plan` statement by statement in the caller's transaction."""
    answer: list[Row] | None = None
    try:
        while True:
            statement = plan.send(answer)
            if isinstance(statement, Fetch):
                answer = await tx.fetch(statement.sql, *statement.args)
            else:
                await tx.executemany(statement.sql, statement.rows)
                answer = None
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        plan.close()


def run_plan_sync(conn: Any, plan: Plan[T]) -> T:
    """Run `plan` on a sqlite3 connection, on the thread that owns it."""
    answer: list[Row] | None = None
    try:
        while True:
            statement = plan.send(answer)
            if isinstance(statement, Fetch):
                cursor = conn.execute(statement.sql, statement.args)
                answer = cursor.fetchall()
            else:
                cursor = conn.executemany(statement.sql, statement.rows)
                answer = None
            cursor.close()
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        plan.close()
