"""User ids are a narrow alphabet, and two pairs of users never share a direct conversation."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from storage.messages import direct_key
from tests.servers import ServerProcess, uid


@pytest.mark.parametrize(
    "sub",
    ["org1|u100", "u100|zed", "a b", "x" * 129, "", "\u0430lice", "bob\n", "../etc", "a/b"],
)
async def test_a_token_whose_sub_leaves_the_alphabet_is_refused_with_401(
    server: ServerProcess, sub: str
) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token(sub)}"}
    ) as http:
        response = await http.get("/api/messages/conversations")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_websocket_with_a_bar_in_its_sub_is_refused_with_401(
    server: ServerProcess,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws_url}?token={server.token('org1|u100')}"):
            pass
    assert refused.value.response.status_code == 401


async def test_a_sub_of_128_letters_digits_and_punctuation_is_accepted(
    server: ServerProcess,
) -> None:
    sub = ("Ab9_-.@:" * 16)[:128]
    async with server.client(sub) as http:
        assert (await http.get("/api/messages/conversations")).status_code == 200


def test_pairs_whose_ids_join_alike_get_different_direct_keys() -> None:
    assert direct_key("org1|u100", "zed") != direct_key("org1", "u100|zed")
    assert direct_key("a:1", "b") != direct_key("a", "1:b")
    assert direct_key("zed", "amy") == direct_key("amy", "zed")


def _sqlite(server: ServerProcess, statement: str, *args: object) -> None:
    with sqlite3.connect(server.data_dir / "pitchey.db") as db:
        db.execute(statement.replace("$1", "?").replace("$2", "?"), args)


async def _postgres(server: ServerProcess, statement: str, *args: object) -> None:
    conn = await asyncpg.connect(server.env["DATABASE_URL"], timeout=5)
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_direct_keys_stored_in_the_old_format_are_migrated(
    make_server: Callable[..., ServerProcess], backend: str
) -> None:
    server = make_server(backend=backend)
    alice, bob = sorted((uid(), uid()))
    async with server.client(alice) as http:
        created = (
            await http.post("/api/messages/conversations", json={"participantIds": [bob]})
        ).json()
    server.stop()
    # Back to how main stored it before m0005: "a|b", and m0005 not yet applied.
    old_key = f"{alice}|{bob}"
    for statement, args in (
        ("UPDATE conversations SET direct_key = $1 WHERE id = $2", (old_key, created["id"])),
        ("DELETE FROM schema_migrations WHERE version = $1", (5,)),
    ):
        if backend == "sqlite":
            _sqlite(server, statement, *args)
        else:
            await _postgres(server, statement, *args)
    server.start()
    async with server.client(bob) as http:
        again = await http.post("/api/messages/conversations", json={"participantIds": [alice]})
    assert again.status_code == 200
    assert again.json()["id"] == created["id"]
