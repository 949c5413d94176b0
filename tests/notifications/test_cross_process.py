"""With Redis, a notification accepted by one process reaches sessions on another."""

from __future__ import annotations

import importlib.util
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.servers import ServerProcess, uid, ws_client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(
    importlib.util.find_spec("state.redis") is None, reason="no Redis backend in this tree"
)
async def test_a_push_crosses_processes_through_redis(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    if not _redis_up():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": f"test-notify-{uuid.uuid4().hex[:8]}:"}
    shared = tmp_path / "shared"
    first = make_server(data_dir=shared, **env)
    second = make_server(data_dir=shared, secret=first.secret, **env)
    user = uid("far")
    async with ws_client(second, user) as remote, ws_client(first, user) as local:
        async with first.client("platform", "service") as http:
            response = await http.post(
                "/api/notifications/send",
                json={"userId": user, "type": "system", "title": "hi", "message": "m"},
            )
        [notification_id] = response.json()["ids"]
        for session in (remote, local):
            frame = await session.expect("notification")
            assert frame["notification"]["id"] == notification_id
        async with second.client(user) as http:
            assert (await http.post("/api/notifications/read-all")).json() == {"unreadCount": 0}
        for session in (remote, local):
            assert (await session.expect("inbox"))["unreadCount"] == 0
