"""Who may do what: bearer tokens on REST and WebSocket, and access to conversations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server.auth import TokenVerifier
from tests.servers import ServerProcess, conversation, uid, ws_client


def bad_tokens(server: ServerProcess) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": jwt.encode({"sub": "x", "exp": now - 10}, server.secret, algorithm="HS256"),
        "wrong_signature": jwt.encode(
            {"sub": "x", "exp": now + 60},
            "not-the-secret-but-long-enough-for-hs256!!",
            algorithm="HS256",
        ),
        "alg_none": jwt.encode({"sub": "x", "exp": now + 60}, None, algorithm="none"),  # type: ignore[arg-type]
        "no_sub": jwt.encode({"exp": now + 60}, server.secret, algorithm="HS256"),
        "no_exp": jwt.encode({"sub": "x"}, server.secret, algorithm="HS256"),
        "garbage": "not.a.jwt",
        "unknown_role": jwt.encode(
            {"sub": "x", "exp": now + 60, "role": "root"}, server.secret, algorithm="HS256"
        ),
    }


KINDS = ["expired", "wrong_signature", "alg_none", "no_sub", "no_exp", "garbage", "unknown_role"]


@pytest.mark.parametrize("kind", KINDS)
async def test_rest_refuses_bad_token_with_401(server: ServerProcess, kind: str) -> None:
    token = bad_tokens(server)[kind]
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(
            "/api/messages/conversations", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_rest_without_token_is_401(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/api/messages/conversations")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize("kind", KINDS)
async def test_websocket_refuses_bad_token_before_accept(server: ServerProcess, kind: str) -> None:
    token = bad_tokens(server)[kind]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws_url}?token={token}"):
            pass
    assert refused.value.response.status_code == 401


async def test_websocket_accepts_token_in_authorization_header(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {server.token(uid())}"}
    async with connect(server.ws_url, additional_headers=headers) as conn:
        await conn.send('{"type":"ping"}')
        assert "pong" in str(await conn.recv())


async def test_websocket_without_token_is_refused(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url):
            pass
    assert refused.value.response.status_code == 401


async def test_browser_from_another_origin_is_refused(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{server.ws_url}?token={server.token(uid())}",
            origin="https://evil.example",  # type: ignore[arg-type]
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_same_origin_browser_is_accepted(server: ServerProcess) -> None:
    async with connect(
        f"{server.ws_url}?token={server.token(uid())}",
        origin=server.url,  # type: ignore[arg-type]
    ) as conn:
        await conn.send('{"type":"ping"}')
        assert "pong" in str(await conn.recv())


async def test_outsider_cannot_read_history(server: ServerProcess) -> None:
    conv = await conversation(server, uid(), uid())
    async with server.client(uid()) as http:
        response = await http.get(f"/api/messages/{conv}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_outsider_cannot_send(server: ServerProcess) -> None:
    conv = await conversation(server, uid(), uid())
    async with server.client(uid()) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": "x"}
        )
    assert response.status_code == 404


async def test_outsider_cannot_subscribe(server: ServerProcess) -> None:
    conv = await conversation(server, uid(), uid())
    async with ws_client(server, uid()) as outsider:
        await outsider.send({"type": "subscribe", "conversationId": conv})
        error = await outsider.expect("error")
        assert error["code"] == "not_found" and error["ref"] == conv


async def test_outsider_cannot_mark_read_or_type(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        sent = (
            await http.post("/api/messages/send", json={"conversationId": conv, "content": "x"})
        ).json()
    async with server.client(uid()) as http:
        response = await http.post(f"/api/messages/{sent['id']}/read")
    assert response.status_code == 404
    async with ws_client(server, uid()) as outsider:
        await outsider.send({"type": "typing", "conversationId": conv, "isTyping": True})
        assert (await outsider.expect("error"))["code"] == "not_found"


async def test_sender_id_other_than_caller_is_forbidden(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with server.client(alice) as http:
        response = await http.post(
            "/api/messages/send", json={"conversationId": conv, "content": "x", "senderId": bob}
        )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_tokens_never_reach_the_server_log(
    make_server: Callable[..., ServerProcess],
) -> None:
    # At debug, uvicorn's line per handshake (with the URL and its token) is written.
    server = make_server(LOG_LEVEL="debug")
    token = server.token(uid())
    async with connect(f"{server.ws_url}?token={token}") as conn:
        await conn.send('{"type":"ping"}')
        await conn.recv()
    assert "token=[redacted]" in server.log_tail(100_000)
    assert token not in server.log_tail(100_000)


async def test_a_token_accepted_before_is_refused_from_the_second_it_expires(
    server: ServerProcess,
) -> None:
    # Verified tokens are remembered (server.auth.TokenVerifier); its exp still counts.
    exp = int(time.time()) + 2
    token = jwt.encode({"sub": uid(), "exp": exp}, server.secret, algorithm="HS256")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        assert (await http.get("/api/messages/conversations")).status_code == 200
        assert (await http.get("/api/messages/conversations")).status_code == 200
        deadline = time.monotonic() + 5
        while time.time() < exp and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        response = await http.get("/api/messages/conversations")
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "unauthorized", "message": "token expired"}


async def test_a_remembered_token_does_not_let_a_forged_one_with_its_claims_in(
    server: ServerProcess,
) -> None:
    user = uid()
    claims = {"sub": user, "exp": int(time.time()) + 60}
    good = jwt.encode(claims, server.secret, algorithm="HS256")
    forged = jwt.encode(claims, "not-the-secret-but-long-enough-for-hs256!!", algorithm="HS256")
    async with httpx.AsyncClient(base_url=server.url) as http:
        ok = await http.get(
            "/api/messages/conversations", headers={"Authorization": f"Bearer {good}"}
        )
        refused = await http.get(
            "/api/messages/conversations", headers={"Authorization": f"Bearer {forged}"}
        )
    assert ok.status_code == 200
    assert refused.status_code == 401


def test_the_remembered_tokens_are_bounded_in_number_and_length() -> None:
    secret = "s" * 32
    verifier = TokenVerifier(secret, max_entries=3)
    exp = int(time.time()) + 60
    tokens = [jwt.encode({"sub": f"u{i}", "exp": exp}, secret, algorithm="HS256") for i in range(5)]
    long_token = jwt.encode({"sub": "u", "exp": exp, "name": "n" * 2000}, secret, algorithm="HS256")
    for token in [*tokens, long_token]:
        verifier.verify(token)
    assert list(verifier._known) == tokens[2:]  # the oldest went first; the long one never entered
