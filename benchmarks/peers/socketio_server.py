"""Peer (c): python-socketio (ASGI) on uvicorn with rooms.

Events: "join" (room name) -> the server puts the socket in the room and emits "joined";
"publish" ({"room", "content"}) -> the server emits "message" ({"room", "content"}) to the
room. It stores nothing. `GET /healthz` answers 200 for the harness's readiness poll.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[], logger=False)


async def join(sid: str, room: str) -> None:
    await sio.enter_room(sid, room)
    await sio.emit("joined", room, to=sid)


async def publish(sid: str, data: dict[str, Any]) -> None:
    await sio.emit("message", data, room=data["room"])


sio.on("join", join)
sio.on("publish", publish)


async def healthz(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


app = socketio.ASGIApp(sio, other_asgi_app=Starlette(routes=[Route("/healthz", healthz)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
