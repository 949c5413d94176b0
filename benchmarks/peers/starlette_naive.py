"""Chat peers `starlette-sqlite-naive` and `starlette-pg-naive`: what a Python developer
writes first. A Starlette WebSocket endpoint on uvicorn (uvloop, httptools); every published
message is INSERTed and COMMITted, awaited, before its frame goes to the room's members (the
sender included), one message at a time per connection.

Protocol (text JSON frames), the harness's "plain" dialect, as peers/ws_broadcast.py:
  client -> {"type": "join", "room": R}            server -> {"type": "joined", "room": R}
  client -> {"type": "publish", "room": R, "content": C}
  (INSERT + COMMIT) -> every member of R: {"type": "message", "room": R, "content": C}

DATABASE_URL picks the store:
  sqlite:///PATH     aiosqlite, one connection, WAL with synchronous=FULL, INSERT then COMMIT;
  postgresql://...   an asyncpg pool of 10, one INSERT per message (its own transaction).
`GET /healthz` answers 200 once the table exists (uvicorn serves after the lifespan start).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Protocol

import aiosqlite
import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);
"""
PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id bigserial PRIMARY KEY,
    room text NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);
"""
# asyncpg's own default, stated: enough commits in flight for PostgreSQL to flush several with
# one WAL fsync, few enough backends to leave the two cores to the server and the generator.
PG_POOL_SIZE = 10


class Store(Protocol):
    async def save(self, room: str, content: str) -> None: ...

    async def close(self) -> None: ...


class SqliteStore:
    """One aiosqlite connection (one thread), as the aiosqlite README shows it."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        db = await aiosqlite.connect(path)
        # WAL: readers never block the writer, and a commit appends instead of rewriting
        # pages. FULL: the commit fsyncs the WAL, so an acknowledged message survives power
        # loss; the same durability as our server's default.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.executescript(SQLITE_SCHEMA)
        await db.commit()
        return cls(db)

    async def save(self, room: str, content: str) -> None:
        await self.db.execute(
            "INSERT INTO messages (room, content, created_at) VALUES (?, ?, ?)",
            (room, content, time.time()),
        )
        await self.db.commit()

    async def close(self) -> None:
        await self.db.close()


class PostgresStore:
    """An asyncpg pool; `execute` outside a transaction block commits on its own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        pool = await asyncpg.create_pool(url, min_size=PG_POOL_SIZE, max_size=PG_POOL_SIZE)
        await pool.execute(PG_SCHEMA)
        return cls(pool)

    async def save(self, room: str, content: str) -> None:
        # asyncpg prepares and caches the statement per connection by itself.
        await self.pool.execute(
            "INSERT INTO messages (room, content) VALUES ($1, $2)", room, content
        )

    async def close(self) -> None:
        await self.pool.close()


async def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        return await SqliteStore.open(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresStore.open(url)
    raise SystemExit(f"DATABASE_URL must be sqlite:///PATH or postgresql://...: {url!r}")


class Chat:
    """Rooms in memory, messages in the store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rooms: defaultdict[str, set[WebSocket]] = defaultdict(set)
        self.store: Store | None = None  # opened by the lifespan, before the first request

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.store = await open_store(self.url)
        try:
            yield
        finally:
            await self.store.close()

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def endpoint(self, ws: WebSocket) -> None:
        assert self.store is not None  # the lifespan has run
        store = self.store
        await ws.accept()
        joined: set[str] = set()
        try:
            while True:
                frame = json.loads(await ws.receive_text())
                room = frame["room"]
                if frame["type"] == "join":
                    self.rooms[room].add(ws)
                    joined.add(room)
                    await ws.send_text(json.dumps({"type": "joined", "room": room}))
                elif frame["type"] == "publish":
                    await store.save(room, frame["content"])
                    out = json.dumps({"type": "message", "room": room, "content": frame["content"]})
                    for member in tuple(self.rooms[room]):
                        # A member that left between the commit and this send misses nothing
                        # it could still read: the message is stored.
                        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                            await member.send_text(out)
        except WebSocketDisconnect:
            pass
        finally:
            for room in joined:
                self.rooms[room].discard(ws)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/healthz", self.healthz), WebSocketRoute("/", self.endpoint)],
            lifespan=self.lifespan,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        Chat(os.environ["DATABASE_URL"]).app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        # Idle benchmark clients answer pings but need none; no compression was offered.
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
