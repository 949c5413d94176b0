"""Peer (b): a plain `websockets` server that fans out with `websockets.broadcast()`.

Protocol (text JSON frames), shared with the harness's "plain" dialect:
  client -> {"type": "join", "room": R}            server -> {"type": "joined", "room": R}
  client -> {"type": "publish", "room": R, "content": C}
  server -> every member of R: {"type": "message", "room": R, "content": C}
It stores nothing. `GET /healthz` answers 200 for the harness's readiness poll.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from http import HTTPStatus

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

rooms: defaultdict[str, set[ServerConnection]] = defaultdict(set)


def healthz(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def handler(connection: ServerConnection) -> None:
    joined: set[str] = set()
    try:
        async for raw in connection:
            frame = json.loads(raw)
            room = frame["room"]
            if frame["type"] == "join":
                rooms[room].add(connection)
                joined.add(room)
                await connection.send(json.dumps({"type": "joined", "room": room}))
            elif frame["type"] == "publish":
                out = {"type": "message", "room": room, "content": frame["content"]}
                broadcast(rooms[room], json.dumps(out))
    finally:
        for room in joined:
            rooms[room].discard(connection)


async def serve_forever(host: str, port: int) -> None:
    # No ping timeout: idle benchmark clients do not answer pings on a schedule.
    async with serve(
        handler, host, port, process_request=healthz, ping_interval=None, compression=None
    ) as server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve_forever(args.host, args.port))


if __name__ == "__main__":
    main()
