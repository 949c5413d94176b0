"""/api/messages: conversations, history, sending, edits, members and read positions;
/api/users/me/blocks."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from base.errors import Forbidden
from schemas.messages import (
    AddParticipants,
    BlockUser,
    CreateConversation,
    EditMessage,
    SendMessage,
)
from server.http import body, caller, ensure_accepting, int_param, json, services

# A page is bounded so one request cannot read a whole history at once.
MAX_PAGE = 100


async def create_conversation(request: Request) -> Response:
    who = await caller(request)
    data = await body(request, CreateConversation)
    conversation, created = await services(request).messaging.create_conversation(
        who, data.participant_ids, data.title, data.metadata
    )
    return json(conversation, status=201 if created else 200)


async def list_conversations(request: Request) -> Response:
    who = await caller(request)
    limit = int_param(request, "limit", default=50, lo=1, hi=MAX_PAGE)
    assert limit is not None
    page = await services(request).messaging.list_conversations(
        who, request.query_params.get("cursor") or None, limit
    )
    return json(page)


async def history(request: Request) -> Response:
    who = await caller(request)
    limit = int_param(request, "limit", default=50, lo=1, hi=MAX_PAGE)
    assert limit is not None
    page = await services(request).messaging.history(
        who,
        request.path_params["conversation_id"],
        before=int_param(request, "before", default=None, lo=1, hi=2**53),
        after=int_param(request, "after", default=None, lo=0, hi=2**53),
        limit=limit,
    )
    return json(page)


async def presence(request: Request) -> Response:
    who = await caller(request)
    online = await services(request).messaging.presence(who, request.path_params["conversation_id"])
    return json(online)


async def send(request: Request) -> Response:
    who = await caller(request)
    svc = services(request)
    ensure_accepting(svc)
    data = await body(request, SendMessage)
    if data.sender_id is not None and data.sender_id != who.user_id:
        raise Forbidden("senderId must be the caller")
    message = await svc.attachments.send(
        who, data.conversation_id, data.content, data.client_msg_id, data.attachment_ids
    )
    return json(message, status=201)


async def mark_read(request: Request) -> Response:
    who = await caller(request)
    receipt = await services(request).messaging.mark_read(who, request.path_params["message_id"])
    return json(receipt)


async def edit(request: Request) -> Response:
    who = await caller(request)
    svc = services(request)
    ensure_accepting(svc)
    data = await body(request, EditMessage)
    message = await svc.messaging.edit(who, str(request.path_params["message_id"]), data.content)
    return json(message)


async def delete(request: Request) -> Response:
    who = await caller(request)
    svc = services(request)
    ensure_accepting(svc)
    await svc.messaging.delete(who, str(request.path_params["message_id"]))
    return Response(status_code=204)


async def add_participants(request: Request) -> Response:
    who = await caller(request)
    data = await body(request, AddParticipants)
    conversation = await services(request).messaging.add_participants(
        who, request.path_params["conversation_id"], data.user_ids, data.share_history
    )
    return json(conversation)


async def remove_participant(request: Request) -> Response:
    who = await caller(request)
    await services(request).messaging.remove_participant(
        who, request.path_params["conversation_id"], request.path_params["user_id"]
    )
    return Response(status_code=204)


async def block(request: Request) -> Response:
    who = await caller(request)
    data = await body(request, BlockUser)
    await services(request).messaging.block(who, data.user_id)
    return Response(status_code=204)


async def unblock(request: Request) -> Response:
    who = await caller(request)
    await services(request).messaging.unblock(who, request.path_params["user_id"])
    return Response(status_code=204)


async def blocks(request: Request) -> Response:
    who = await caller(request)
    return json(await services(request).messaging.blocked(who))


routes = [
    Route("/api/messages/conversations", create_conversation, methods=["POST"]),
    Route("/api/messages/conversations", list_conversations, methods=["GET"]),
    Route("/api/messages/conversations/{conversation_id}/presence", presence, methods=["GET"]),
    Route(
        "/api/messages/conversations/{conversation_id}/participants",
        add_participants,
        methods=["POST"],
    ),
    Route(
        "/api/messages/conversations/{conversation_id}/participants/{user_id}",
        remove_participant,
        methods=["DELETE"],
    ),
    Route("/api/messages/send", send, methods=["POST"]),
    Route("/api/users/me/blocks", block, methods=["POST"]),
    Route("/api/users/me/blocks", blocks, methods=["GET"]),
    Route("/api/users/me/blocks/{user_id}", unblock, methods=["DELETE"]),
    Route("/api/messages/{message_id}/read", mark_read, methods=["POST"]),
    Route("/api/messages/{conversation_id}", history, methods=["GET"]),
    # Message ids are UUIDs: the convertor keeps these off other paths, so DELETE on
    # /api/messages/send still answers 405, not "message not found".
    Route("/api/messages/{message_id:uuid}", edit, methods=["PATCH"]),
    Route("/api/messages/{message_id:uuid}", delete, methods=["DELETE"]),
]
