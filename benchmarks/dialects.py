"""How the load generator speaks to each kind of server, as pure functions on text frames.

Every dialect carries the benchmark's `content` string verbatim inside a JSON string, so the
receiver finds the send timestamp by a substring search (see `payload.py`) whatever the
envelope. Dialects only build frames and classify incoming control frames; the sockets live
in `loadgen.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

Room = str | int  # our conversation ids are whatever the server returns; peers use names


class Reply(Enum):
    """What an incoming frame that carries no benchmark payload means to a client."""

    NONE = 0
    JOINED = 1
    PING = 2  # Engine.IO ping: answer with ENGINEIO_PONG
    OPENED = 3  # Engine.IO open: connect the default namespace with SOCKETIO_CONNECT
    CONNECTED = 4  # Socket.IO namespace connected (or WebSocket open): send the join frames
    ERROR = 5  # the server refused something: counted and one sample kept for the report


ENGINEIO_PONG = "3"
SOCKETIO_CONNECT = "40"


@dataclass(frozen=True, slots=True)
class Dialect:
    """One wire protocol: `plain` JSON rooms, `socketio` (EIO 4 / SIO 5) or `pitchey`."""

    name: str

    def path(self, token: str | None) -> str:
        if self.name == "socketio":
            return "/socket.io/?EIO=4&transport=websocket"
        if self.name == "pitchey":
            return f"/ws?token={token}"
        return "/"

    @property
    def joins_on_open(self) -> bool:
        """Socket.IO must see Engine.IO open, then namespace connect, before a join event."""
        return self.name != "socketio"

    def join_frames(self, room: Room) -> list[str]:
        if self.name == "socketio":
            return ["42" + json.dumps(["join", room])]
        if self.name == "pitchey":
            return [json.dumps({"type": "subscribe", "conversationId": room})]
        return [json.dumps({"type": "join", "room": room})]

    def publish_frame(self, room: Room, content: str, msg_id: str) -> str:
        if self.name == "socketio":
            return "42" + json.dumps(["publish", {"room": room, "content": content}])
        if self.name == "pitchey":
            frame = {
                "type": "send",
                "conversationId": room,
                "content": content,
                "clientMsgId": msg_id,
            }
            return json.dumps(frame)
        return json.dumps({"type": "publish", "room": room, "content": content})

    def classify(self, payload: bytes) -> Reply:
        if self.name == "socketio":
            if payload == b"2":
                return Reply.PING
            if payload.startswith(b'42["joined"'):
                return Reply.JOINED
            if payload.startswith(b"0{"):
                return Reply.OPENED
            if payload.startswith(b"40"):
                return Reply.CONNECTED
            return Reply.NONE
        if self.name == "pitchey":
            if b'"type":"error"' in payload:
                return Reply.ERROR
            return Reply.JOINED if b'"type":"subscribed"' in payload else Reply.NONE
        return Reply.JOINED if b'"joined"' in payload else Reply.NONE
