"""Tokens stay out of URLs: one-use tickets for `/ws`, and a balancer log without query strings."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import Nodes
from tests.servers import ROOT, ServerProcess, WsClient, conversation, uid


async def _ticket(server: ServerProcess, user: str) -> dict[str, object]:
    async with server.client(user) as http:
        response = await http.post("/api/realtime/ticket")
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def _refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    return refused.value.response.status_code


async def test_a_ticket_opens_a_socket_as_its_user(server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    issued = await _ticket(server, alice)
    assert issued["expiresIn"] == 30 and isinstance(issued["ticket"], str)
    async with connect(f"{server.ws_url}?ticket={issued['ticket']}") as conn:
        client = WsClient(conn)
        assert (await client.subscribe(conv))["online"] == [alice]


async def test_a_ticket_opens_only_one_socket(server: ServerProcess) -> None:
    ticket = (await _ticket(server, uid()))["ticket"]
    async with connect(f"{server.ws_url}?ticket={ticket}"):
        assert await _refused_status(f"{server.ws_url}?ticket={ticket}") == 401


async def test_an_unknown_ticket_is_refused_with_401(server: ServerProcess) -> None:
    assert await _refused_status(f"{server.ws_url}?ticket=made-up") == 401


async def test_an_expired_ticket_is_refused(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(WS_TICKET_TTL="0.2")
    ticket = (await _ticket(server, uid()))["ticket"]
    await asyncio.sleep(0.3)
    assert await _refused_status(f"{server.ws_url}?ticket={ticket}") == 401


async def test_a_ticket_needs_a_bearer_token(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/api/realtime/ticket")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_ticket_issued_on_one_node_opens_one_socket_on_another(cluster: Nodes) -> None:
    a, b = cluster(2)
    ticket = (await _ticket(a, uid()))["ticket"]
    async with connect(f"{b.ws_url}?ticket={ticket}"):
        assert await _refused_status(f"{a.ws_url}?ticket={ticket}") == 401


def test_the_balancer_logs_requests_without_their_query_strings() -> None:
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    formats = re.findall(r"log_format\s+(\w+)\s+([^;]*);", config)
    assert formats, "nginx.conf declares its own log format"
    for _, fields in formats:
        # $request and $request_uri carry the query string, and with it `?token=`.
        assert not re.search(r"\$(request|request_uri|query_string|args|arg_\w+)\b", fields)
        assert "$uri" in fields
    used = re.findall(r"access_log\s+\S+\s+(\w+)", config)
    assert used and set(used) <= {name for name, _ in formats}
