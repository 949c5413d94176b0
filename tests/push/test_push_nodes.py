"""Two processes on PostgreSQL and Redis: a session on either node counts as live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.push.conftest import pushes_to, subscribed
from tests.servers import ServerProcess, conversation, ws_client
from tests.services import (
    create_pg_database,
    delete_prefix,
    drop_pg_database,
    redis_prefix,
    require_redis,
)
from tests.standins.push_service import PushServiceStandin


@pytest.fixture
def shared() -> Iterator[dict[str, str]]:
    database, redis_url, prefix = create_pg_database(), require_redis(), redis_prefix()
    yield {"DATABASE_URL": database, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix}
    delete_prefix(redis_url, prefix)
    drop_pg_database(database)


async def test_a_session_on_another_node_holds_the_unread_push_back(
    make_push_server: Any, pushsvc: PushServiceStandin, shared: dict[str, str]
) -> None:
    first: ServerProcess = make_push_server(**shared)
    second: ServerProcess = make_push_server(secret=first.secret, **shared)
    bob, browser = await subscribed(first, pushsvc)
    alice, _ = await subscribed(first, pushsvc)
    watched = await conversation(first, alice, bob, title="watched")
    elsewhere = await conversation(first, alice, bob, title="elsewhere")

    async with ws_client(second, bob) as ws:
        await ws.subscribe(watched)
        for conversation_id in (watched, elsewhere):
            async with first.client(alice) as http:
                body = {"conversationId": conversation_id, "content": "hello"}
                assert (await http.post("/api/messages/send", json=body)).status_code == 201
        await ws.expect("message")
        await pushes_to(pushsvc, browser)
        await asyncio.sleep(0.3)
    assert [p.payload["conversationId"] for p in pushsvc.received(browser)] == [elsewhere]
