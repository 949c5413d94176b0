"""/api/messages/attachments (and /api/email/attachments): upload, direct upload, download.

These routes come before `/api/messages/{conversation_id}` in the route list, so
`attachments` is never read as a conversation id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from attachments.service import EMAIL, MESSAGE
from base.errors import Invalid
from base.identity import Caller
from schemas.attachments import PresignUpload
from server.http import body, caller, ensure_accepting, json, services
from server.multipart import FORM_OVERHEAD_BYTES, FormStream, FormTooLarge


async def upload(request: Request) -> Response:
    return await _upload(request, await caller(request), MESSAGE)


async def upload_for_email(request: Request) -> Response:
    return await _upload(request, await caller(request), EMAIL)


async def _upload(request: Request, who: Caller, kind: str) -> Response:
    svc = services(request)
    ensure_accepting(svc)
    uploads = svc.attachments
    limit = uploads.max_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FormTooLarge(f"the file is larger than {uploads.max_bytes} bytes")
    # The conversation may come as a query parameter or as a form field before the file.
    conversation_id = request.query_params.get("conversationId")
    info = None
    async for part in FormStream(request, limit).parts():
        if part.filename is None:
            value = await part.text()
            if part.name == "conversationId":
                conversation_id = value.strip()
        elif part.name == "file" and info is None:
            info = await uploads.upload(
                who,
                kind=kind,
                conversation_id=conversation_id,
                filename=part.filename,
                declared_type=part.content_type,
                chunks=part.chunks(),
            )
    if info is None:
        raise Invalid("the form has no `file` part")
    return json(info, status=201)


async def presign(request: Request) -> Response:
    who = await caller(request)
    svc = services(request)
    ensure_accepting(svc)
    data = await body(request, PresignUpload)
    answer = await svc.attachments.presign(
        who, data.conversation_id, data.filename, data.content_type, data.size
    )
    return json(answer, status=201)


async def confirm(request: Request) -> Response:
    who = await caller(request)
    svc = services(request)
    info = await svc.attachments.confirm(who, request.path_params["attachment_id"])
    return json(info)


async def download(request: Request) -> Response:
    who = await caller(request)
    svc = services(request)
    found = await svc.attachments.download(who, request.path_params["attachment_id"])
    # Links are per user and short-lived: no shared cache may keep them or the bytes.
    if found.url is not None:
        return RedirectResponse(found.url, status_code=302, headers={"Cache-Control": "no-store"})
    assert found.stream is not None
    return StreamingResponse(
        found.stream,
        headers={
            "Content-Type": found.content_type,
            "Content-Length": str(found.row.size),
            "Content-Disposition": found.disposition,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            # A file opened in the browser runs nothing and loads nothing.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


routes = [
    Route("/api/messages/attachments", upload, methods=["POST"]),
    Route("/api/messages/attachments/presign", presign, methods=["POST"]),
    Route("/api/messages/attachments/{attachment_id}/confirm", confirm, methods=["POST"]),
    Route("/api/messages/attachments/{attachment_id}", download, methods=["GET"]),
    Route("/api/email/attachments", upload_for_email, methods=["POST"]),
]
