"""Transactions on both databases: all or nothing, whichever way the statements travel.

SQLite's writer runs a plan in one trip to its thread and holds back a transaction's
`executemany` until the next statement that answers (storage/sqlite_thread.py); PostgreSQL
awaits each statement. Both must commit everything or nothing, and report the error that
ended a transaction, not one from cleaning up after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database, IntegrityError, open_database
from storage.plan import Fetch, Plan, WriteMany
from tests.services import create_pg_database, drop_pg_database


class Boom(Exception):
    pass


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path}/t.db" if request.param == "sqlite" else create_pg_database()
    database = open_database(url)
    await database.connect()
    await database.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    try:
        yield database
    finally:
        await database.close()
        if request.param == "postgres":
            drop_pg_database(url)


async def _names(db: Database) -> list[str]:
    return [row[0] for row in await db.fetch("SELECT name FROM items ORDER BY id")]


def _write_then(fail: bool) -> Plan[list[str]]:
    yield WriteMany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a"), (2, "b")])
    rows = yield Fetch("SELECT name FROM items WHERE id > ? ORDER BY id", (0,))
    if fail:
        raise Boom("after two writes")
    yield WriteMany("INSERT INTO items (id, name) VALUES (?, ?)", [(3, "c")])
    return [row[0] for row in rows or ()]


async def test_a_plan_reads_its_own_writes_and_commits_them_all(db: Database) -> None:
    assert await db.run(_write_then(fail=False)) == ["a", "b"]
    assert await _names(db) == ["a", "b", "c"]


async def test_a_plan_that_raises_midway_leaves_nothing_written(db: Database) -> None:
    with pytest.raises(Boom):
        await db.run(_write_then(fail=True))
    assert await _names(db) == []
    # The writer is not left inside the failed transaction.
    assert await db.run(_write_then(fail=False)) == ["a", "b"]


async def test_a_plan_whose_statement_is_refused_reports_the_refusal(db: Database) -> None:
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", 2, "taken")

    def clash() -> Plan[None]:
        yield WriteMany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a"), (2, "b")])

    with pytest.raises(IntegrityError):
        await db.run(clash())
    assert await _names(db) == ["taken"]


async def test_a_refused_write_held_back_surfaces_at_the_next_statement(db: Database) -> None:
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", 2, "taken")
    with pytest.raises(IntegrityError):
        async with db.transaction() as tx:
            await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a"), (2, "b")])
            await tx.fetch("SELECT COUNT(*) FROM items")
    assert await _names(db) == ["taken"]
    async with db.transaction() as tx:
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a")])
    assert await _names(db) == ["a", "taken"]


async def test_a_refused_write_held_back_until_commit_fails_the_commit(db: Database) -> None:
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", 2, "taken")
    with pytest.raises(IntegrityError):
        async with db.transaction() as tx:
            await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(3, "c")])
            await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(2, "b")])
    assert await _names(db) == ["taken"]


async def test_a_body_that_raises_rolls_back_its_held_back_writes(db: Database) -> None:
    with pytest.raises(Boom):
        async with db.transaction() as tx:
            await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a")])
            assert await tx.execute("UPDATE items SET name = ? WHERE id = ?", "z", 1) == 1
            raise Boom("after the writes")
    assert await _names(db) == []
