"""The push store's hooks for user data export and erasure (storage.push.PushStore)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database, open_database
from storage.migrations import migrate
from storage.push import PushStore, QueuedPush, queue_for_user
from tests.services import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PushStore]:
    url = create_pg_database() if request.param == "postgres" else f"sqlite:///{tmp_path}/p.db"
    db: Database = open_database(url)
    await db.connect()
    await migrate(db)
    try:
        yield PushStore(db)
    finally:
        await db.close()
        if request.param == "postgres":
            drop_pg_database(url)


async def _subscribe(store: PushStore, user_id: str, endpoint: str) -> str:
    row, _ = await store.subscribe(user_id, endpoint, "B" * 87, "A" * 22, "Firefox", 1000)
    async with store.db.transaction() as tx:
        await queue_for_user(
            tx, QueuedPush(f"k-{endpoint}", user_id, '{"title":"x"}', "normal", 60, 1000), 1000
        )
    return row.id


async def test_export_lists_a_users_subscriptions_and_pending_pushes_without_keys(
    store: PushStore,
) -> None:
    mine = await _subscribe(store, "ann", "https://push.example/1")
    await _subscribe(store, "bob", "https://push.example/2")

    exported = await store.export_user("ann")

    assert [s["id"] for s in exported["subscriptions"]] == [mine]
    assert exported["subscriptions"][0]["endpoint"] == "https://push.example/1"
    assert len(exported["pending"]) == 1
    assert "B" * 87 not in str(exported)


async def test_erase_removes_everything_of_the_user_and_nothing_else(store: PushStore) -> None:
    await _subscribe(store, "ann", "https://push.example/1")
    await _subscribe(store, "bob", "https://push.example/2")
    await store.mark_unread("ann", "c1", 5, None, 1000)

    await store.erase_user("ann")

    assert await store.export_user("ann") == {"subscriptions": [], "pending": []}
    assert len((await store.export_user("bob"))["pending"]) == 1
    assert await store.db.fetch("SELECT 1 FROM push_unread_marks WHERE user_id = 'ann'") == []
