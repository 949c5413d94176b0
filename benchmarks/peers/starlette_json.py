"""The REST ceiling: a bare Starlette JSON app on uvicorn (httptools, uvloop), no storage.

Same paths and shapes as ours, none of the work behind them:
  GET  /api/messages/{conversation_id}?limit=50 -> {"items": [<=limit messages], "nextCursor": null}
  POST /api/messages/send {conversationId, content} -> 201 the message with an id and a seq
No authentication, no validation beyond decoding the JSON body, nothing stored: whatever it
answers per second is what Starlette on uvicorn can do on this core.
"""

from __future__ import annotations

import argparse
import itertools
import uuid
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

PAGE_MAX = 100
NOW = datetime.now(UTC).isoformat()
HISTORY = [
    {
        "id": uuid.uuid4().hex,
        "conversationId": "c0",
        "seq": seq,
        "senderId": "rest-u",
        "content": f"rest:{seq:08d}:" + "x" * 86,
        "createdAt": NOW,
        "clientMsgId": None,
    }
    for seq in range(1, PAGE_MAX + 1)
]
seqs = itertools.count(PAGE_MAX + 1)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def history(request: Request) -> Response:
    limit = min(int(request.query_params.get("limit", "50")), PAGE_MAX)
    return JSONResponse({"items": HISTORY[-limit:], "nextCursor": None})


async def send(request: Request) -> Response:
    body = await request.json()
    message = {
        "id": uuid.uuid4().hex,
        "conversationId": body["conversationId"],
        "seq": next(seqs),
        "senderId": "rest-u",
        "content": body["content"],
        "createdAt": datetime.now(UTC).isoformat(),
        "clientMsgId": body.get("clientMsgId"),
    }
    return JSONResponse(message, status_code=201)


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/api/messages/send", send, methods=["POST"]),
        Route("/api/messages/{conversation_id}", history),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
