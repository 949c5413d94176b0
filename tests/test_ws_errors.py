"""Bad frames get an error frame and the connection stays open; oversized ones close with 1009."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import EVERY_BACKEND_AND_ASGI
from tests.servers import ServerProcess, conversation, uid, ws_client

# Also on uvicorn's own protocol: the fallback for an incompatible uvicorn (WS_FAST_PATH).
pytestmark = EVERY_BACKEND_AND_ASGI


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ('{"type": "fly"}', "invalid_frame"),
        ('{"noType": true}', "invalid_frame"),
        ('{"type": "send", "conversationId": 7, "content": "x"}', "invalid_frame"),
        ('{"type": "subscribe", "conversationId": "c", "since": -1}', "invalid_frame"),
        ('{"type": "subscribe", "conversationId": "c", "extra": 1}', "invalid_frame"),
        ("[1, 2, 3]", "invalid_frame"),
        ('"just a string"', "invalid_frame"),
    ],
)
async def test_bad_frame_gets_error_and_connection_stays_open(
    server: ServerProcess, frame: str, code: str
) -> None:
    async with ws_client(server, uid()) as client:
        await client.send(frame)
        error = await client.recv()
        assert error["type"] == "error" and error["code"] == code and error["message"]
        await client.send({"type": "ping"})
        assert (await client.recv())["type"] == "pong"


async def test_binary_frame_gets_error(server: ServerProcess) -> None:
    async with ws_client(server, uid()) as client:
        await client.conn.send(b"\x00\x01binary")
        assert (await client.recv())["code"] == "unsupported_frame"


async def test_frame_over_size_limit_closes_with_1009(server: ServerProcess) -> None:
    alice = uid()
    conv = await conversation(server, alice, uid())
    async with ws_client(server, alice, max_size=None) as client:
        await client.send({"type": "send", "conversationId": conv, "content": "x" * (65 * 1024)})
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with server.client(alice) as http:
        assert (await http.get(f"/api/messages/{conv}")).json()["items"] == []


async def test_unsubscribe_from_conversation_not_subscribed_is_an_error(
    server: ServerProcess,
) -> None:
    async with ws_client(server, uid()) as client:
        await client.send({"type": "unsubscribe", "conversationId": "nope"})
        assert (await client.expect("error"))["code"] == "not_found"


async def test_send_to_unknown_conversation_is_not_found_with_ref(server: ServerProcess) -> None:
    async with ws_client(server, uid()) as client:
        await client.send(
            {"type": "send", "conversationId": "nope", "content": "x", "clientMsgId": "c1"}
        )
        error = await client.expect("error")
        assert error["code"] == "not_found" and error["ref"] == "c1"
