"""Conversations cannot be mass-produced or made huge, and direct keys cannot collide."""

from __future__ import annotations

from collections.abc import Callable

from tests.servers import ServerProcess, uid


async def test_twenty_first_conversation_in_a_minute_is_429_with_retry_after(
    server: ServerProcess,
) -> None:
    alice = uid()
    async with server.client(alice) as http:
        statuses = []
        for _ in range(21):
            response = await http.post(
                "/api/messages/conversations",
                json={"participantIds": [uid(), uid()], "title": "Pitchey Security Team"},
            )
            statuses.append(response.status_code)
    assert statuses == [201] * 20 + [429]
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


async def test_the_creation_limit_is_per_user(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(CONVERSATION_CREATE_RATE_PER_MINUTE="1")
    alice, bob = uid(), uid()
    for user in (alice, bob):
        async with server.client(user) as http:
            response = await http.post(
                "/api/messages/conversations", json={"participantIds": [uid()]}
            )
            assert response.status_code == 201


async def test_a_conversation_of_1001_participants_is_refused_with_422(
    server: ServerProcess,
) -> None:
    alice = uid()
    async with server.client(alice) as http:
        response = await http.post(
            "/api/messages/conversations",
            json={"participantIds": [uid() for _ in range(1000)], "title": "everyone"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert (await http.get("/api/messages/conversations")).json()["items"] == []


async def test_a_conversation_of_1000_participants_is_created(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        response = await http.post(
            "/api/messages/conversations",
            json={"participantIds": [uid() for _ in range(999)], "title": "everyone"},
        )
    assert response.status_code == 201
    assert len(response.json()["participantIds"]) == 1000
