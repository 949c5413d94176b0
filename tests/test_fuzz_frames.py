"""Property-based fuzzing of WebSocket frames: every bad frame gets an answer, nothing breaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.servers import RawWebSocket, ServerProcess, uid

TYPES = ["subscribe", "unsubscribe", "send", "typing", "read", "ping", "nope", "", "SEND"]
FIELDS = ["type", "conversationId", "content", "clientMsgId", "since", "isTyping", "messageId", "x"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
frames = st.one_of(
    # Plausible frames with wrong or missing fields.
    st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES)}, optional={f: json_values for f in FIELDS if f != "type"}
    ),
    # Any JSON at all.
    json_values,
)


@pytest.fixture(scope="module")
def conn(server: ServerProcess) -> Iterator[ClientConnection]:
    with connect(f"{server.ws_url}?token={server.token(uid())}", max_size=None) as connection:
        yield connection


def answer(conn: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(conn.recv(timeout=5))
    return frame


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=frames)
def test_any_json_frame_is_answered_and_the_connection_survives(
    conn: ClientConnection, frame: Any
) -> None:
    conn.send(json.dumps(frame))
    conn.send('{"type": "ping"}')
    # Every frame that is not a valid command is answered with an error frame; valid ones
    # (a ping, or a command on a conversation that does not exist) answer pong or error.
    pongs = 2 if frame == {"type": "ping"} else 1
    seen = [answer(conn)]
    while sum(f["type"] == "pong" for f in seen) < pongs:
        seen.append(answer(conn))
    assert all(f["type"] in ("error", "pong", "unsubscribed") for f in seen), seen
    assert all(set(f) == {"type", "code", "message", "ref"} for f in seen if f["type"] == "error")


def test_deeply_nested_frame_is_refused_cleanly(conn: ClientConnection) -> None:
    conn.send("[" * 20_000 + "]" * 20_000)
    assert answer(conn)["type"] == "error"


def test_huge_numbers_are_refused_cleanly(conn: ClientConnection) -> None:
    conn.send('{"type": "subscribe", "conversationId": "c", "since": 1e400}')
    assert answer(conn)["code"] == "invalid_frame"
    conn.send('{"type": "subscribe", "conversationId": "c", "since": ' + "9" * 4000 + "}")
    assert answer(conn)["code"] in ("invalid_frame", "invalid_json")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.binary(max_size=512))
def test_binary_frames_get_an_error(conn: ClientConnection, payload: bytes) -> None:
    conn.send(payload)
    assert answer(conn)["code"] == "unsupported_frame"


def test_invalid_utf8_text_closes_that_connection_only(server: ServerProcess) -> None:
    raw = RawWebSocket(server, uid())
    # A text frame (opcode 1) whose payload is not UTF-8: RFC 6455 requires closing with 1007.
    payload = b"\xff\xfe\xfd"
    mask = b"\x01\x02\x03\x04"
    raw.sock.sendall(
        bytes([0x81, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )
    frames = raw.frames(timeout=10)
    raw.close()
    assert frames[-1][0] == 0x8 and int.from_bytes(frames[-1][1][:2], "big") == 1007
    with connect(f"{server.ws_url}?token={server.token(uid())}") as other:
        other.send('{"type": "ping"}')
        assert json.loads(other.recv(timeout=5))["type"] == "pong"
