"""The WebSocket endpoint: authenticate before accepting, read frames, drain the session queue.

Each connection has two coroutines: this handler reads and dispatches frames
in order (so one client's sends keep their order), and a writer drains the
session's bounded queue. Rooms never write to sockets themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from urllib.parse import urlsplit

import msgspec
from starlette.responses import Response
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from base.errors import ServiceError, Unauthorized, Unavailable
from base.identity import Caller
from rooms import metrics
from rooms.frames import Outgoing
from rooms.session import CLOSE_GOING_AWAY, Session
from schemas.codec import client_frame_decoder, encode
from schemas.frames import (
    Ack,
    AnyClientFrame,
    ErrorFrame,
    Ping,
    Pong,
    Read,
    Send,
    Subscribe,
    Typing,
    Unsubscribe,
    Unsubscribed,
)
from server import logs
from server.auth import bearer
from server.errors import as_service_error, error_response
from server.transport import SINK_EXTENSION
from server.wiring import Services
from storage.db import DatabaseUnavailable

log = logging.getLogger("pitchey.ws")
_ids = itertools.count(1)
_PONG = Outgoing(encode(Pong()))
# Tickets are 43 characters; the bound keeps hashing what an anonymous client sends cheap.
_MAX_TICKET_CHARS = 256


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """No Origin (not a browser) and same-origin are allowed; others must be listed."""
    if origin is None or "*" in allowed or origin in allowed:
        return True
    return host is not None and urlsplit(origin).netloc == host


async def websocket_endpoint(websocket: WebSocket) -> None:
    svc: Services = websocket.app.state.services
    settings = svc.settings
    if svc.draining:
        await _deny(websocket, 503, "unavailable", "server is shutting down")
        return
    if not origin_allowed(
        websocket.headers.get("origin"), websocket.headers.get("host"), settings.allowed_origins
    ):
        await _deny(websocket, 403, "forbidden", "origin not allowed")
        return
    try:
        caller = await _authenticate(websocket, svc)
        svc.messaging.remember(caller)
    except ServiceError as exc:
        await _deny(websocket, exc.status, exc.code, exc.message)
        return
    limit = settings.ws_max_connections_per_user
    if not await svc.connections.acquire(caller.user_id, limit):
        await _deny(websocket, 429, "too_many_connections", f"more than {limit} open connections")
        return
    # Every counted connection is released exactly once, whatever happens from here.
    try:
        await websocket.accept()
        sink = websocket.scope.get("extensions", {}).get(SINK_EXTENSION, {}).get("sink")
        session = Session(
            next(_ids),
            caller.user_id,
            settings.ws_send_queue_max_frames,
            settings.ws_send_queue_max_bytes,
            sink,
        )
        svc.sessions[session] = None
        metrics.connections.inc()
        logs.connection_id.set(session.id)
        await svc.users.connect(session)
        # With our transport the session writes directly; under another ASGI server a task
        # drains it.
        writer = None
        if sink is None:
            writer = asyncio.create_task(_write(websocket, session), name=f"ws-writer:{session.id}")
        # The read loop is inlined and reads the ASGI receive callable directly: each coroutine
        # frame on this path lives as long as the connection, so idle connections cost less.
        receive = websocket._receive
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                if not session.closed:  # else: closing; wait for the disconnect
                    await _handle(message, session, caller, svc)
                # Not kept while the connection idles until its next frame.
                del message
        except WebSocketDisconnect:
            pass
        finally:
            svc.sessions.pop(session, None)
            metrics.connections.dec()
            svc.rooms.leave_all(session)
            await svc.users.disconnect(session)
            if not session.closed:
                session.close(1000, "")
            if writer is not None:
                with contextlib.suppress(Exception):
                    await writer
    finally:
        await svc.connections.release(caller.user_id)


async def _authenticate(websocket: WebSocket, svc: Services) -> Caller:
    """A one-use ticket (`?ticket=`), else a bearer token (`?token=` or the header)."""
    ticket = websocket.query_params.get("ticket")
    if ticket:
        caller = await svc.tickets.redeem(ticket[:_MAX_TICKET_CHARS])
        if caller is None:
            raise Unauthorized("ticket unknown, expired or already used")
        return caller
    token = websocket.query_params.get("token") or bearer(websocket.headers.get("authorization"))
    return svc.tokens.verify(token)


async def _deny(websocket: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse before accepting: an HTTP answer where the server supports it, else a close."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        response: Response = error_response(status, code, message)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason=message[:120])


async def _write(websocket: WebSocket, session: Session) -> None:
    try:
        await session.drain(websocket.send_text)
        await websocket.close(session.close_code, session.close_reason)
    except Exception as exc:
        # The peer is gone; the reader sees the disconnect and cleans up.
        log.warning("writer of session %d ended: %r", session.id, exc)
        session.close(CLOSE_GOING_AWAY, "")


async def _handle(message: Message, session: Session, caller: Caller, svc: Services) -> None:
    session.last_seen = time.monotonic()
    metrics.frames_in.inc()
    text = message.get("text")
    if text is None:
        _error(session, "unsupported_frame", "binary frames are not supported; send JSON text")
        return
    try:
        frame = client_frame_decoder.decode(text)
    except msgspec.ValidationError as exc:
        _error(session, "invalid_frame", str(exc))
        return
    except msgspec.DecodeError as exc:
        _error(session, "invalid_json", f"frame is not valid JSON: {exc}")
        return
    except RecursionError:
        # msgspec gives up on nesting past Python's recursion limit; the connection stays.
        _error(session, "invalid_json", "frame is nested too deeply")
        return
    try:
        await _dispatch(frame, session, caller, svc)
    except (Unavailable, DatabaseUnavailable) as exc:
        # Retryable: a hint, with jitter, so clients refused together do not return together.
        # (A DatabaseUnavailable here is an outage some path forgot to translate.)
        refused = as_service_error(exc) if isinstance(exc, DatabaseUnavailable) else exc
        base = svc.settings.outage_retry_after
        retry_after = round(random.uniform(base, 2 * base), 3)
        _error(session, refused.code, refused.message, _ref(frame), retry_after)
    except ServiceError as exc:
        _error(session, exc.code, exc.message, _ref(frame))
    except Exception:
        # A bug, not the client's fault: answer the frame and keep the connection (closing
        # with 1000 would tell the client all is well and invite an immediate reconnect).
        log.exception("%s frame of session %d failed", type(frame).__name__, session.id)
        _error(session, "internal_error", "internal error", _ref(frame))


async def _dispatch(frame: AnyClientFrame, session: Session, caller: Caller, svc: Services) -> None:
    messaging = svc.messaging
    match frame:
        case Send():
            if svc.draining:
                _error(session, "unavailable", "server is shutting down", _ref(frame))
                return
            message = await svc.attachments.send(
                caller,
                frame.conversation_id,
                frame.content,
                frame.client_msg_id,
                frame.attachment_ids,
            )
            ack = Ack(
                message_id=message.id,
                seq=message.seq,
                conversation_id=message.conversation_id,
                client_msg_id=message.client_msg_id,
            )
            session.send(Outgoing(encode(ack)))
        case Subscribe():
            limit = svc.settings.ws_max_subscriptions
            if (
                len(session.subscriptions) >= limit
                and frame.conversation_id not in session.subscriptions
            ):
                # Each subscription is a room task: the bound is per connection.
                raise ServiceError(
                    f"more than {limit} subscriptions on one connection; unsubscribe first",
                    code="too_many_subscriptions",
                )
            await messaging.subscribe(session, frame.conversation_id, frame.since)
        case Unsubscribe():
            await messaging.unsubscribe(session, frame.conversation_id)
            session.send(Outgoing(encode(Unsubscribed(conversation_id=frame.conversation_id))))
        case Typing():
            await messaging.typing(caller, frame.conversation_id, frame.is_typing)
        case Read():
            await messaging.mark_read(caller, frame.message_id, frame.conversation_id)
        case Ping():
            session.send(_PONG)


def _ref(frame: AnyClientFrame) -> str | None:
    if isinstance(frame, Send) and frame.client_msg_id:
        return frame.client_msg_id
    return getattr(frame, "conversation_id", None)


def _error(
    session: Session,
    code: str,
    message: str,
    ref: str | None = None,
    retry_after: float | msgspec.UnsetType = msgspec.UNSET,
) -> None:
    frame = ErrorFrame(code=code, message=message, ref=ref, retry_after=retry_after)
    session.send(Outgoing(encode(frame)))
