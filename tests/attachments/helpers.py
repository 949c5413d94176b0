"""Small files of each kind and the calls every attachment test makes."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from tests.servers import ServerProcess

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" * 50
TEXT = "Loved the pitch. Budget attached — ça marche?\n".encode() * 20


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def upload(
    server: ServerProcess,
    user: str,
    conversation_id: str,
    data: bytes,
    filename: str = "still.png",
    content_type: str | None = "image/png",
) -> httpx.Response:
    file: tuple[Any, ...] = (
        (filename, data) if content_type is None else (filename, data, content_type)
    )
    async with server.client(user) as http:
        return await http.post(
            "/api/messages/attachments",
            data={"conversationId": conversation_id},
            files={"file": file},
        )


async def uploaded(
    server: ServerProcess,
    user: str,
    conversation_id: str,
    data: bytes = PNG,
    filename: str = "still.png",
    content_type: str | None = "image/png",
) -> str:
    response = await upload(server, user, conversation_id, data, filename, content_type)
    assert response.status_code == 201, response.text
    attachment_id: str = response.json()["id"]
    return attachment_id


async def send(
    server: ServerProcess, user: str, conversation_id: str, attachment_ids: list[str], **extra: Any
) -> httpx.Response:
    async with server.client(user) as http:
        return await http.post(
            "/api/messages/send",
            json={
                "conversationId": conversation_id,
                "content": extra.pop("content", "see attached"),
                "attachmentIds": attachment_ids,
                **extra,
            },
        )


async def download(server: ServerProcess, user: str, attachment_id: str) -> httpx.Response:
    """GET the attachment; a redirect (S3) is followed without our token, like a browser."""
    async with server.client(user) as http:
        response = await http.get(f"/api/messages/attachments/{attachment_id}")
    if response.status_code != 302:
        return response
    assert response.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient(timeout=10) as plain:
        return await plain.get(response.headers["location"])
