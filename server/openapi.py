"""OpenAPI 3.1 for every REST route, generated from the msgspec Structs the routes use.

The schemas are the route's own types: change a Struct and the spec changes
with it. Each route's entry below says which types it takes and returns;
tests/test_openapi.py fails when a route has no entry, and schemathesis checks
the running server against the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec

from schemas import attachments as att
from schemas import email as em
from schemas import messages as msg
from schemas import notifications as nt
from schemas import push as ps
from schemas import realtime as rt
from schemas import users as us
from schemas import webhooks as wh

USER, SERVICE, ADMIN, PUBLIC, SIGNED = "user", "service", "admin", "public", "signed"

_ERRORS = {
    400: "Malformed request (for example, a body that is not JSON)",
    401: "Missing or invalid bearer token",
    403: "The token's role may not use this route",
    404: "Not found, or not yours to see",
    409: "Conflicts with an earlier request or the current state (Idempotency-Key reused "
    "with another body; a message edited too late or deleted; a direct conversation)",
    405: "Method not allowed on this path (a message id that is not a UUID names no message)",
    413: "Body or upload too large",
    415: "Content type not allowed or not matching the bytes",
    422: "A field failed validation",
    429: "Rate limited; see Retry-After",
    503: "Storage unavailable, server shutting down, or too many requests in flight "
    "(see Retry-After); nothing was stored",
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: type = str
    description: str = ""
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    tag: str
    auth: str = USER
    body: Any = None
    response: Any = None
    status: int = 200
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = (401, 422)
    content_type: str = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)


_CURSOR = Param("cursor", str, "opaque cursor from a previous page's nextCursor")


def _limit(most: int) -> Param:
    return Param("limit", int, f"page size, 1 to {most}", minimum=1, maximum=most)


def _workflow(path: str, summary: str, body: Any) -> Op:
    """A platform workflow: service token, validated body, 202 with the notification ids."""
    return Op(
        "POST",
        f"/api/notifications/{path}",
        summary,
        "workflows",
        SERVICE,
        body=body,
        response=nt.Accepted,
        status=202,
        errors=(400, 401, 403, 422, 503),
    )


def _json_obj() -> Any:
    return dict[str, Any]


OPERATIONS: tuple[Op, ...] = (
    # ---- health and operations
    Op("GET", "/healthz", "Liveness", "operations", PUBLIC, response=_json_obj(), errors=()),
    Op(
        "GET",
        "/readyz",
        "Readiness: database reads, the message writer able to commit, Redis",
        "operations",
        PUBLIC,
        response=_json_obj(),
        errors=(503,),
    ),
    Op(
        "GET",
        "/metrics",
        "Prometheus metrics of this process (production: admin token; with METRICS_PORT: "
        "served only on that port, 404 here)",
        "operations",
        PUBLIC,
        content_type="text/plain",
        errors=(401, 403, 404),
    ),
    # ---- real time
    Op(
        "POST",
        "/api/realtime/ticket",
        "A one-use ticket for /ws?ticket= (valid expiresIn seconds), so no token goes in a URL",
        "realtime",
        response=rt.Ticket,
        status=201,
        errors=(401, 503),
    ),
    # ---- messaging
    Op(
        "POST",
        "/api/messages/conversations",
        "Create a conversation (or get the existing direct one: 200)",
        "messages",
        body=msg.CreateConversation,
        response=msg.Conversation,
        status=201,
        errors=(400, 401, 422, 429, 503),
    ),
    Op(
        "GET",
        "/api/messages/conversations",
        "Your conversations, most recent activity first",
        "messages",
        response=msg.ConversationPage,
        query=(_CURSOR, _limit(100)),
    ),
    Op(
        "GET",
        "/api/messages/conversations/{conversation_id}/presence",
        "Who is online in a conversation now (participants only)",
        "messages",
        response=msg.Presence,
        errors=(401, 404, 503),
    ),
    Op(
        "POST",
        "/api/messages/send",
        "Send a message",
        "messages",
        body=msg.SendMessage,
        response=msg.Message,
        status=201,
        errors=(400, 401, 403, 404, 422, 429, 503),
    ),
    Op(
        "PATCH",
        "/api/messages/{message_id:uuid}",
        "Edit your message within MESSAGE_EDIT_WINDOW (subscribers get message_updated)",
        "messages",
        body=msg.EditMessage,
        response=msg.Message,
        errors=(401, 403, 404, 405, 409, 422, 429, 503),
    ),
    Op(
        "DELETE",
        "/api/messages/{message_id:uuid}",
        "Delete a message (sender or admin): content erased, history shows deleted",
        "messages",
        status=204,
        errors=(401, 403, 404, 405, 503),
    ),
    Op(
        "POST",
        "/api/messages/conversations/{conversation_id}/participants",
        "Add members (any participant); shareHistory shows them what came before",
        "messages",
        body=msg.AddParticipants,
        response=msg.Conversation,
        errors=(401, 404, 409, 422, 503),
    ),
    Op(
        "DELETE",
        "/api/messages/conversations/{conversation_id}/participants/{user_id}",
        "Leave (yourself) or remove a member (the creator): their sessions stop at once",
        "messages",
        status=204,
        errors=(401, 403, 404, 409, 503),
    ),
    Op(
        "POST",
        "/api/users/me/blocks",
        "Block a user: they cannot open or write in a direct conversation with you, and "
        "you receive nothing they write in any conversation",
        "messages",
        body=msg.BlockUser,
        status=204,
        errors=(401, 409, 422, 503),
    ),
    Op(
        "GET",
        "/api/users/me/blocks",
        "The users you blocked",
        "messages",
        response=msg.BlockList,
        errors=(401, 503),
    ),
    Op(
        "DELETE",
        "/api/users/me/blocks/{user_id}",
        "Unblock a user",
        "messages",
        status=204,
        errors=(401, 503),
    ),
    Op(
        "POST",
        "/api/messages/{message_id}/read",
        "Mark a message and all earlier ones read",
        "messages",
        response=msg.ReadReceipt,
        errors=(401, 404, 503),
    ),
    Op(
        "GET",
        "/api/messages/{conversation_id}",
        "Messages in seq order",
        "messages",
        response=msg.MessagePage,
        query=(
            Param("before", int, "only seq < before (newest page first)", minimum=1, maximum=2**53),
            Param("after", int, "only seq > after", minimum=0, maximum=2**53),
            _limit(100),
        ),
        errors=(401, 404, 422),
    ),
    # ---- attachments
    Op(
        "POST",
        "/api/messages/attachments",
        "Upload a file for a conversation (multipart: conversationId, file)",
        "attachments",
        body="multipart",
        response=att.AttachmentInfo,
        status=201,
        errors=(400, 401, 404, 413, 415, 422),
    ),
    Op(
        "POST",
        "/api/messages/attachments/presign",
        "Direct upload to S3: a presigned PUT URL",
        "attachments",
        body=att.PresignUpload,
        response=att.PresignedUpload,
        status=201,
        errors=(400, 401, 404, 413, 415, 422),
    ),
    Op(
        "POST",
        "/api/messages/attachments/{attachment_id}/confirm",
        "Confirm a direct upload: its bytes are copied to a key no URL can write, then checked",
        "attachments",
        response=att.AttachmentInfo,
        errors=(401, 404, 409, 413, 415, 422),
    ),
    Op(
        "GET",
        "/api/messages/attachments/{attachment_id}",
        "Download (participants only; S3 redirects to a short-lived URL)",
        "attachments",
        content_type="*/*",
        errors=(401, 404),
    ),
    Op(
        "POST",
        "/api/email/attachments",
        "Upload a file to attach to emails (multipart: file)",
        "email",
        SERVICE,
        body="multipart",
        response=att.AttachmentInfo,
        status=201,
        errors=(400, 401, 403, 413, 415, 422),
    ),
    # ---- email
    Op(
        "POST",
        "/api/email/send",
        "Queue an email (template + data, optional subject override; or subject + html/text)",
        "email",
        SERVICE,
        body=em.SendEmail,
        response=em.Accepted,
        status=202,
        errors=(400, 401, 403, 409, 413, 422, 429, 503),
        extra={
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "schema": {"type": "string", "maxLength": 255},
                }
            ]
        },
    ),
    Op(
        "POST",
        "/api/email/batch",
        "Queue up to 1000 emails; one result per item",
        "email",
        SERVICE,
        body=em.SendBatch,
        response=em.BatchAccepted,
        status=202,
        errors=(400, 401, 403, 409, 413, 422, 429, 503),
        extra={
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "schema": {"type": "string", "maxLength": 255},
                }
            ]
        },
    ),
    Op(
        "GET",
        "/api/email/{email_id}/status",
        "Delivery status and event history (a service sees its own emails, an admin all)",
        "email",
        SERVICE,
        response=em.EmailStatus,
        errors=(401, 403, 404),
    ),
    Op(
        "GET",
        "/api/email/templates",
        "Every email template (built-in and EMAIL_TEMPLATE_DIR) with its variables",
        "email",
        SERVICE,
        response=em.TemplateList,
        errors=(401, 403),
    ),
    Op(
        "GET",
        "/api/email/unsubscribe",
        "Confirmation page for a List-Unsubscribe link; changes nothing, its button posts",
        "email",
        PUBLIC,
        query=(Param("token", str, "the signed token from the email's link", required=True),),
        errors=(403, 422),
        content_type="text/html",
    ),
    Op(
        "POST",
        "/api/email/unsubscribe",
        "One-click unsubscribe (RFC 8058): no login, idempotent",
        "email",
        PUBLIC,
        query=(Param("token", str, "the signed token from the email's link", required=True),),
        errors=(403, 422),
        content_type="text/html",
    ),
    Op(
        "GET",
        "/api/email/suppressions",
        "Suppressed addresses (one list for every caller)",
        "email",
        ADMIN,
        response=em.SuppressionPage,
        query=(_CURSOR, _limit(500)),
        errors=(401, 403, 422),
    ),
    Op(
        "DELETE",
        "/api/email/suppressions/{address}",
        "Remove an address from the suppression list",
        "email",
        ADMIN,
        errors=(401, 403, 404),
    ),
    Op(
        "POST",
        "/api/email/webhooks/sendgrid",
        "SendGrid signed Event Webhook",
        "email",
        SIGNED,
        body=list[dict[str, Any]],
        response=_json_obj(),
        errors=(400, 403, 413),
    ),
    Op(
        "POST",
        "/api/email/webhooks/ses",
        "Amazon SNS notifications for SES",
        "email",
        SIGNED,
        body=_json_obj(),
        response=_json_obj(),
        errors=(400, 403, 413, 422),
    ),
    Op(
        "GET",
        "/dev/emails",
        "Development: emails the dev provider kept (service or admin token)",
        "email",
        SERVICE,
        response=dict[str, list[em.DevEmail]],
        query=(_limit(500),),
        errors=(401, 403, 404, 422),
    ),
    # ---- webhooks out (Standard Webhooks)
    Op(
        "POST",
        "/api/webhooks",
        "Add a webhook endpoint; the answer holds its signing secret (whsec_..., shown once)",
        "webhooks",
        ADMIN,
        body=wh.WebhookIn,
        response=wh.WebhookCreated,
        status=201,
        errors=(401, 403, 422),
    ),
    Op(
        "GET",
        "/api/webhooks",
        "Webhook endpoints (without secrets)",
        "webhooks",
        ADMIN,
        response=wh.WebhookList,
        errors=(401, 403),
    ),
    Op(
        "GET",
        "/api/webhooks/{webhook_id}",
        "One webhook endpoint",
        "webhooks",
        ADMIN,
        response=wh.WebhookOut,
        errors=(401, 403, 404),
    ),
    Op(
        "PATCH",
        "/api/webhooks/{webhook_id}",
        "Change an endpoint's url, events, description; enable or disable it",
        "webhooks",
        ADMIN,
        body=wh.WebhookPatch,
        response=wh.WebhookOut,
        errors=(401, 403, 404, 422),
    ),
    Op(
        "DELETE",
        "/api/webhooks/{webhook_id}",
        "Remove an endpoint and its pending deliveries",
        "webhooks",
        ADMIN,
        status=204,
        errors=(401, 403, 404),
    ),
    Op(
        "POST",
        "/api/webhooks/{webhook_id}/rotate-secret",
        "A new signing secret; the previous one also signs for 24 hours more",
        "webhooks",
        ADMIN,
        response=wh.SecretOut,
        errors=(401, 403, 404),
    ),
    Op(
        "GET",
        "/api/webhooks/{webhook_id}/deliveries",
        "Recent delivery attempts, newest first",
        "webhooks",
        ADMIN,
        response=wh.AttemptList,
        query=(_limit(500),),
        errors=(401, 403, 404, 422),
    ),
    Op(
        "POST",
        "/api/webhooks/{webhook_id}/test",
        "Queue a webhook.test event for this endpoint",
        "webhooks",
        ADMIN,
        response=wh.TestSent,
        status=202,
        errors=(401, 403, 404),
    ),
    # ---- web push
    Op(
        "GET",
        "/api/push/public-key",
        "The VAPID public key for PushManager.subscribe's applicationServerKey",
        "push",
        response=ps.PublicKey,
        errors=(401, 404),
    ),
    Op(
        "POST",
        "/api/push/subscriptions",
        "Store this browser's push subscription (the same endpoint again: 200, same id)",
        "push",
        body=ps.SubscriptionIn,
        response=ps.SubscriptionCreated,
        status=201,
        errors=(401, 404, 422),
    ),
    Op(
        "GET",
        "/api/push/subscriptions",
        "Your push subscriptions",
        "push",
        response=ps.SubscriptionList,
        errors=(401,),
    ),
    Op(
        "DELETE",
        "/api/push/subscriptions/{subscription_id}",
        "Remove one of your push subscriptions",
        "push",
        status=204,
        errors=(401, 404),
    ),
    Op(
        "GET",
        "/api/push/sw.js",
        "The service worker that shows pushes and opens APP_URL + their path on click",
        "push",
        PUBLIC,
        content_type="text/javascript",
        errors=(),
    ),
    # ---- notifications
    Op(
        "GET",
        "/api/notifications",
        "Your notifications, newest first",
        "notifications",
        response=nt.NotificationPage,
        query=(Param("unread", bool, "only unread"), _CURSOR, _limit(100)),
    ),
    Op(
        "POST",
        "/api/notifications/{notification_id}/read",
        "Mark one read",
        "notifications",
        response=nt.InboxCount,
        errors=(401, 404),
    ),
    Op(
        "POST",
        "/api/notifications/read-all",
        "Mark all read",
        "notifications",
        response=nt.InboxCount,
        errors=(401,),
    ),
    Op(
        "GET",
        "/api/notifications/preferences",
        "Your preferences",
        "notifications",
        response=nt.Preferences,
        errors=(401,),
    ),
    Op(
        "PUT",
        "/api/notifications/preferences",
        "Change your preferences",
        "notifications",
        body=nt.PreferencesUpdate,
        response=nt.Preferences,
        errors=(400, 401, 422),
    ),
    Op(
        "POST",
        "/api/notifications/send",
        "Notify users",
        "notifications",
        SERVICE,
        body=nt.SendNotification,
        response=nt.Accepted,
        status=202,
        errors=(400, 401, 403, 422, 503),
    ),
    _workflow("nda/request", "NDA requested: notify the pitch owner", nt.NdaRequest),
    _workflow("nda/approved", "NDA approved: notify the requester", nt.NdaDecision),
    _workflow("nda/rejected", "NDA rejected: notify the requester", nt.NdaDecision),
    _workflow("investment", "Investment status: notify the parties", nt.InvestmentEvent),
    _workflow("production", "Production stage changed: notify the team", nt.ProductionUpdate),
    _workflow("marketplace", "New pitch matching interests: notify users", nt.MarketplaceAlert),
    Op(
        "PUT",
        "/api/users/{user_id}",
        "Set a user's email, name, timezone, locale",
        "users",
        SERVICE,
        body=nt.UserUpdate,
        response=nt.UserProfile,
        errors=(400, 401, 403, 422),
    ),
    Op(
        "GET",
        "/api/users/{user_id}/export",
        "Everything stored about a user, as one JSON document streamed in pieces "
        "(cut off with complete: false after USER_EXPORT_TIMEOUT seconds)",
        "users",
        SERVICE,
        response=us.UserExport,
        errors=(401, 403, 422, 503),
    ),
    Op(
        "DELETE",
        "/api/users/{user_id}",
        "Erase a user: stored before the 202, carried out in the background (their messages "
        "become deletions, their data is removed, their address kept only as a hash); "
        "a user.erased webhook when done",
        "users",
        SERVICE,
        response=us.ErasureAccepted,
        status=202,
        errors=(401, 403, 422, 503),
    ),
)

# Routes that are not part of the JSON API.
UNDOCUMENTED = {"/ws", "/static", "/docs", "/docs/assets", "/openapi.json", "/demo"}


def _param_schema(param: Param) -> dict[str, Any]:
    if param.kind is int:
        schema: dict[str, Any] = {"type": "integer"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        return schema
    if param.kind is bool:
        return {"type": "string", "enum": ["true", "false"]}
    return {"type": "string"}


@cache
def build() -> dict[str, Any]:
    types: list[Any] = [msg.Error]
    for op in OPERATIONS:
        for item in (op.body, op.response):
            if item is not None and item != "multipart":
                types.append(item)
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    by_type = dict(zip(map(id, types), schemas, strict=True))
    error_ref = by_type[id(msg.Error)]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": _operation_id(op),
        }
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": _path_schema(convertor)}
            for name, convertor in _path_params(op.path)
        ]
        parameters += [
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "description": p.description,
                "schema": _param_schema(p),
            }
            for p in op.query
        ]
        parameters += op.extra.get("parameters", [])
        if parameters:
            operation["parameters"] = parameters
        if op.auth in (USER, SERVICE, ADMIN):
            operation["security"] = [{"bearer": []}]
            if op.auth == SERVICE:
                operation["description"] = "Needs a token with role service or admin."
            if op.auth == ADMIN:
                operation["description"] = "Needs a token with role admin."
        elif op.auth == SIGNED:
            operation["description"] = (
                "Authenticated by the provider's signature, verified before parsing."
            )
        if op.body == "multipart":
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "conversationId": {"type": "string"},
                                "file": {"type": "string", "format": "binary"},
                            },
                            "required": ["file"],
                        }
                    }
                },
            }
        elif op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_type[id(op.body)]}},
            }
        ok: dict[str, Any] = {"description": "Success"}
        if op.response is not None:
            ok["content"] = {op.content_type: {"schema": by_type[id(op.response)]}}
        elif op.content_type != "application/json":
            ok["content"] = {op.content_type: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(op.status): ok}
        if op.method == "GET" and op.path == "/api/messages/attachments/{attachment_id}":
            responses["302"] = {"description": "Redirect to a short-lived presigned URL (S3)"}
        again = {
            "/api/messages/conversations": "The existing direct conversation",
            "/api/push/subscriptions": "The endpoint was registered already: updated, same id",
        }
        if op.method == "POST" and op.path in again:
            responses["200"] = {
                "description": again[op.path],
                "content": {"application/json": {"schema": by_type[id(op.response)]}},
            }
        # Any route answers 400 to a NUL in its path or query (server.middleware.Admission),
        # and 503 past HTTP_MAX_CONCURRENCY requests in flight (server.middleware); a route
        # that reads a body answers 413 past its limit, counted while it streams in.
        always = {400, 503} | ({413} if op.body is not None else set())
        for status in sorted({*op.errors, *always}):
            responses[str(status)] = {
                "description": _ERRORS[status],
                "content": {"application/json": {"schema": error_ref}},
            }
        operation["responses"] = responses
        paths.setdefault(_CONVERTOR.sub("}", op.path), {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pitchey Comms",
            "version": "0.1.0",
            "description": "Messaging, notifications and email delivery. "
            "The WebSocket protocol at /ws is described in docs/protocol.md.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation_id(op: Op) -> str:
    words = (
        _CONVERTOR.sub("}", op.path)
        .strip("/")
        .replace("{", "")
        .replace("}", "")
        .replace("-", "_")
        .split("/")
    )
    return "_".join([op.method.lower(), *words])


# A Starlette convertor in a route's path (`{message_id:uuid}`): not part of an OpenAPI path.
_CONVERTOR = re.compile(r":\w+}")


def _path_params(path: str) -> list[tuple[str, str]]:
    """(name, convertor) of each path parameter; convertor "" when none."""
    params = []
    for part in path.split("/"):
        if part.startswith("{"):
            name, _, convertor = part[1:-1].partition(":")
            params.append((name, convertor))
    return params


def _path_schema(convertor: str) -> dict[str, Any]:
    if convertor == "uuid":
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}
