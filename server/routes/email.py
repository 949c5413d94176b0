"""/api/email: send, batch, status, suppressions, provider webhooks; /dev/emails."""

from __future__ import annotations

import html

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from base.clock import iso
from base.errors import Forbidden, Invalid, NotFound
from base.identity import Caller
from delivery.email import EmailService
from delivery.providers.base import OutgoingEmail
from delivery.unsubscribe import BadToken, Target
from delivery.webhooks import MalformedWebhook, WebhookError
from schemas.bounds import FreeJson
from schemas.email import DevEmail, SuppressionOut, SuppressionPage, TemplateList, TemplateOut
from schemas.settings import Settings
from server.auth import require_role
from server.http import (
    caller,
    check_free_json,
    ensure_accepting,
    int_param,
    json,
    json_body,
    read_body,
    services,
)

MAX_PAGE = 500
_payload = msgspec.json.Decoder(OutgoingEmail)


class _TemplateData(msgspec.Struct):
    """Only the free-form field of an email; the service decodes the rest."""

    data: FreeJson | None = None


class _BatchItems(msgspec.Struct):
    emails: list[msgspec.Raw] = []


_template_data = msgspec.json.Decoder(_TemplateData)
_batch_items = msgspec.json.Decoder(_BatchItems)


def _email(request: Request) -> EmailService:
    service: EmailService = services(request).email
    return service


def _check_template_data(raw: bytes, batch: bool, settings: Settings) -> None:
    """Bound each email's free-form `data` before the service decodes the email.

    A body the shapes below do not fit is left to the service, which says what is wrong.
    """
    try:
        items = _batch_items.decode(raw).emails if batch else [msgspec.Raw(raw)]
        for index, item in enumerate(items):
            try:
                check_free_json(_template_data.decode(item), settings)
            except Invalid as exc:
                raise Invalid(f"emails[{index}]: {exc.message}" if batch else exc.message) from None
    except msgspec.DecodeError:
        return
    except RecursionError:
        raise Invalid("the JSON body is nested too deeply") from None


async def _service_caller(request: Request) -> Caller:
    who = await caller(request)
    # A user token must not turn the service into an open mail relay.
    require_role(who, "service", "admin")
    return who


async def _accept(request: Request, batch: bool) -> Response:
    who = await _service_caller(request)
    svc = services(request)
    ensure_accepting(svc)
    raw = await json_body(request, svc.settings.email_max_body_bytes)
    _check_template_data(raw, batch, svc.settings)
    key = request.headers.get("idempotency-key")
    service = _email(request)
    # Attachments given by id are uploads from POST /api/email/attachments.
    uploads = svc.attachments
    reply = await (service.batch if batch else service.send)(who, raw, key, uploads)
    headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
    return json(reply.body, status=reply.status, headers=headers)


async def send(request: Request) -> Response:
    return await _accept(request, batch=False)


async def batch(request: Request) -> Response:
    return await _accept(request, batch=True)


async def status(request: Request) -> Response:
    who = await _service_caller(request)
    return json(await _email(request).status(who, request.path_params["email_id"]))


async def templates(request: Request) -> Response:
    await _service_caller(request)
    found = _email(request).renderer.describe()
    items = [
        TemplateOut(
            name=t.name,
            required=t.required,
            optional=t.optional,
            builtin=t.builtin,
            overridden=t.overridden,
            locales=t.locales,
        )
        for t in found
    ]
    return json(TemplateList(items=items))


def _unsubscribe_target(request: Request) -> tuple[str, Target]:
    token = request.query_params.get("token")
    if not token:
        raise Invalid("token is required")
    unsubscribe = _email(request).unsubscribe
    if unsubscribe is None:
        raise NotFound("unsubscribe links are not enabled")
    try:
        return token, unsubscribe.verify(token)
    except BadToken as exc:
        raise Forbidden(str(exc)) from None


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family:Helvetica,Arial,sans-serif;max-width:32rem;margin:3rem auto;">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>",
        # The page holds the token: it must not be cached or framed.
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _describe(target: Target) -> str:
    if target.e is not None:
        return f"all email to {target.e}"
    return f"{(target.c or '').replace('_', ' ')} email"


async def unsubscribe_page(request: Request) -> Response:
    """What a person sees on following the link: nothing changes on GET (link checkers and
    scanners open every link); the button posts to the same URL."""
    token, target = _unsubscribe_target(request)
    action = html.escape(f"?token={token}", quote=True)
    return _page(
        "Unsubscribe",
        f"<p>Stop receiving {html.escape(_describe(target))}?</p>"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


async def unsubscribe(request: Request) -> Response:
    """RFC 8058 one-click: the token is the authority, no login. Idempotent: a second
    POST changes nothing and answers 200 again."""
    _, target = _unsubscribe_target(request)
    svc = services(request)
    if target.e is not None:
        await _email(request).store.suppress(target.e, "unsubscribe")
    elif target.u is not None and target.c is not None:
        await svc.notifications.preferences.email_off(target.u, target.c)
    return _page(
        "Unsubscribed", f"<p>You will no longer receive {html.escape(_describe(target))}.</p>"
    )


async def _admin(request: Request) -> Caller:
    who = await caller(request)
    # The suppression list is one list for every caller (it protects the shared sender):
    # it names other callers' recipients, and removing an entry undoes someone's bounce,
    # complaint or unsubscribe. An operator's job, not a service's.
    require_role(who, "admin")
    return who


async def list_suppressions(request: Request) -> Response:
    await _admin(request)
    limit = int_param(request, "limit", default=100, lo=1, hi=MAX_PAGE)
    assert limit is not None
    rows = await _email(request).store.suppressions(request.query_params.get("cursor"), limit)
    items = [
        SuppressionOut(
            email=r.email, reason=r.reason, provider=r.provider, created_at=iso(r.created_at)
        )
        for r in rows
    ]
    cursor = rows[-1].email if len(rows) == limit else None
    return json(SuppressionPage(items=items, next_cursor=cursor))


async def delete_suppression(request: Request) -> Response:
    await _admin(request)
    if not await _email(request).store.unsuppress(request.path_params["address"]):
        raise NotFound("that address is not suppressed")
    return Response(status_code=204)


async def sendgrid_webhook(request: Request) -> Response:
    raw = await read_body(request, services(request).settings.webhook_max_body_bytes)
    try:
        received, applied = await services(request).webhooks.sendgrid(request.headers, raw)
    except MalformedWebhook as exc:
        raise Invalid(str(exc)) from None
    except WebhookError as exc:
        raise Forbidden(str(exc)) from None
    return json({"received": received, "applied": applied})


async def ses_webhook(request: Request) -> Response:
    raw = await read_body(request, services(request).settings.webhook_max_body_bytes)
    try:
        received, applied = await services(request).webhooks.ses(raw)
    except MalformedWebhook as exc:
        raise Invalid(str(exc)) from None
    except WebhookError as exc:
        raise Forbidden(str(exc)) from None
    return json({"received": received, "applied": applied})


async def dev_emails(request: Request) -> Response:
    if not services(request).settings.development:
        raise NotFound("not found")
    # Development is the default when ENVIRONMENT is unset, so a forgotten variable must
    # not publish every email to anyone: the same callers as the email API.
    await _service_caller(request)
    limit = int_param(request, "limit", default=50, lo=1, hi=MAX_PAGE)
    assert limit is not None
    rows = await _email(request).store.recent_by_provider("dev", limit)
    items = []
    for email_id, state, payload in rows:
        email = _payload.decode(payload)
        items.append(
            DevEmail(
                id=email_id,
                status=state,
                to=[a.email for a in email.to],
                subject=email.subject,
                html=email.html,
                text=email.text,
            )
        )
    return json({"items": items})


routes = [
    Route("/api/email/send", send, methods=["POST"]),
    Route("/api/email/batch", batch, methods=["POST"]),
    Route("/api/email/webhooks/sendgrid", sendgrid_webhook, methods=["POST"]),
    Route("/api/email/webhooks/ses", ses_webhook, methods=["POST"]),
    Route("/api/email/templates", templates, methods=["GET"]),
    Route("/api/email/unsubscribe", unsubscribe_page, methods=["GET"]),
    Route("/api/email/unsubscribe", unsubscribe, methods=["POST"]),
    Route("/api/email/suppressions", list_suppressions, methods=["GET"]),
    Route("/api/email/suppressions/{address}", delete_suppression, methods=["DELETE"]),
    Route("/api/email/{email_id}/status", status, methods=["GET"]),
    Route("/dev/emails", dev_emails, methods=["GET"]),
]
