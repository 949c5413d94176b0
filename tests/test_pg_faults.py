"""PostgreSQL going away: sends fail with `unavailable` and nothing is acknowledged."""

from __future__ import annotations

from collections.abc import Callable

from tests.servers import ServerProcess, conversation, uid, ws_client
from tests.services import pg_admin


def _close_database(name: str) -> None:
    # Only our own test database: refuse new connections and end the server's current ones.
    assert name.startswith("pitchey_test_"), name
    pg_admin(
        f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
    )


def _open_database(name: str) -> None:
    pg_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


async def test_sends_answer_unavailable_while_the_database_is_unreachable(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(backend="postgres")
    name = server.env["DATABASE_URL"].rsplit("/", 1)[1]
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as ws, server.client(alice) as http:
        await ws.subscribe(conv)
        _close_database(name)
        try:
            response = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": "lost?"}
            )
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "unavailable"
            await ws.send(
                {"type": "send", "conversationId": conv, "content": "lost?", "clientMsgId": "m1"}
            )
            error = await ws.recv()
            while error["type"] != "error":  # skip our own presence frame
                error = await ws.recv()
            assert (error["type"], error["code"], error["ref"]) == ("error", "unavailable", "m1")
            # A conversation this process has not seen yet fails the same way, not with a 500.
            other = await http.post(
                "/api/messages/send", json={"conversationId": "not-cached", "content": "x"}
            )
            assert other.status_code == 503, other.text
            ready = await http.get("/readyz")
            assert ready.status_code == 503
        finally:
            _open_database(name)
        response = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": "back"}
        )
        assert response.status_code == 201, response.text
        # Nothing from the outage was stored: the first stored message is seq 1.
        assert response.json()["seq"] == 1
        history = (await http.get(f"/api/messages/{conv}")).json()["items"]
        assert [m["content"] for m in history] == ["back"]
