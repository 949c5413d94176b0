"""Attachments, run against the local folder and against S3 (moto over HTTP)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.attachments.conftest import SMALL_LIMIT
from tests.attachments.helpers import (
    PDF,
    PNG,
    TEXT,
    download,
    send,
    sha256,
    upload,
    uploaded,
)
from tests.servers import ServerProcess, conversation, uid, ws_client


async def test_upload_answers_metadata_with_sha256(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    response = await upload(att_server, alice, conv, PNG, "still.png", "image/png")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filename"] == "still.png"
    assert body["contentType"] == "image/png"
    assert body["size"] == len(PNG)
    assert body["sha256"] == sha256(PNG)


async def test_attached_over_rest_the_message_shows_metadata(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    first = await uploaded(att_server, alice, conv, PNG)
    second = await uploaded(att_server, alice, conv, PDF, "deck.pdf", "application/pdf")
    response = await send(att_server, alice, conv, [first, second])
    assert response.status_code == 201, response.text
    assert response.json()["attachments"] == [
        {"id": first, "filename": "still.png", "contentType": "image/png", "size": len(PNG)},
        {"id": second, "filename": "deck.pdf", "contentType": "application/pdf", "size": len(PDF)},
    ]


async def test_attached_over_websocket_the_others_see_it(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    attachment = await uploaded(att_server, alice, conv, PNG)
    async with ws_client(att_server, bob) as bob_ws, ws_client(att_server, alice) as alice_ws:
        await bob_ws.subscribe(conv)
        await alice_ws.send(
            {
                "type": "send",
                "conversationId": conv,
                "content": "the still",
                "clientMsgId": "c-1",
                "attachmentIds": [attachment],
            }
        )
        await alice_ws.expect("ack")
        [message] = await bob_ws.messages(1)
    assert message["attachments"] == [
        {"id": attachment, "filename": "still.png", "contentType": "image/png", "size": len(PNG)}
    ]


async def test_a_participant_downloads_the_bytes(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    response = await upload(att_server, alice, conv, TEXT, "budget notes.txt", "text/plain")
    assert response.status_code == 201, response.text
    attachment = response.json()["id"]
    assert (await send(att_server, alice, conv, [attachment])).status_code == 201
    got = await download(att_server, bob, attachment)
    assert got.status_code == 200
    assert got.content == TEXT
    assert got.headers["content-type"] == "text/plain; charset=utf-8"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''budget%20notes.txt" in disposition


async def test_local_download_is_never_sniffed(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    attachment = await uploaded(att_server, alice, conv, PNG)
    async with att_server.client(bob) as http:
        response = await http.get(f"/api/messages/attachments/{attachment}")
    if response.status_code == 302:
        # S3: a short-lived presigned link that names the type and the disposition.
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["response-content-type"] == ["image/png"]
        assert query["response-content-disposition"][0].startswith("attachment;")
        return
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(PNG))


async def test_a_non_participant_gets_404(att_server: ServerProcess) -> None:
    alice, bob, eve = uid(), uid(), uid()
    conv = await conversation(att_server, alice, bob)
    attachment = await uploaded(att_server, alice, conv, PNG)
    async with att_server.client(eve) as http:
        answer = await http.get(f"/api/messages/attachments/{attachment}")
        missing = await http.get("/api/messages/attachments/no-such-id")
    assert answer.status_code == 404
    assert answer.json() == missing.json()
    # Nor can an outsider upload into the conversation.
    refused = await upload(att_server, eve, conv, PNG)
    assert refused.status_code == 404


async def test_only_the_uploader_can_attach(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    attachment = await uploaded(att_server, alice, conv, PNG)
    response = await send(att_server, bob, conv, [attachment])
    assert response.status_code == 404
    # ... and the refused send took nothing: alice can still attach it.
    assert (await send(att_server, alice, conv, [attachment])).status_code == 201


async def test_an_upload_is_attached_only_to_its_conversation(att_server: ServerProcess) -> None:
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(att_server, alice, bob)
    other = await conversation(att_server, alice, carol)
    attachment = await uploaded(att_server, alice, conv, PNG)
    assert (await send(att_server, alice, other, [attachment])).status_code == 404


async def test_an_upload_is_attached_at_most_once(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    attachment = await uploaded(att_server, alice, conv, PNG)
    assert (await send(att_server, alice, conv, [attachment])).status_code == 201
    again = await send(att_server, alice, conv, [attachment])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


async def test_a_retried_send_returns_the_first_message(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    attachment = await uploaded(att_server, alice, conv, PNG)
    first = await send(att_server, alice, conv, [attachment], clientMsgId="retry-1")
    second = await send(att_server, alice, conv, [attachment], clientMsgId="retry-1")
    assert first.status_code == 201 and second.status_code == 201
    assert first.json()["id"] == second.json()["id"]


async def test_too_large_is_413(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    big = b"a" * (SMALL_LIMIT + 1)
    response = await upload(att_server, alice, conv, big, "long.txt", "text/plain")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    # Exactly the limit is fine.
    exact = await upload(att_server, alice, conv, big[:SMALL_LIMIT], "long.txt", "text/plain")
    assert exact.status_code == 201, exact.text


@pytest.mark.parametrize(
    ("filename", "content_type", "data"),
    [
        ("still.png", "image/png", PDF),  # the header lies about the bytes
        ("deck.pdf", None, PNG),  # the name lies about the bytes
        ("setup.exe", "application/x-msdownload", b"MZ\x90\x00" + bytes(200)),  # not allowed
        ("blob", None, bytes(range(256))),  # no type at all and bytes we do not recognise
        ("page.html", "text/html", b"<script>alert(1)</script>"),  # not allowed
    ],
)
async def test_a_type_the_bytes_do_not_show_is_415(
    att_server: ServerProcess, filename: str, content_type: str | None, data: bytes
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    response = await upload(att_server, alice, conv, data, filename, content_type)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_the_type_comes_from_the_bytes_when_nobody_names_it(
    att_server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    response = await upload(att_server, alice, conv, PDF, "scan", "application/octet-stream")
    assert response.status_code == 201, response.text
    assert response.json()["contentType"] == "application/pdf"


async def test_filenames_are_sanitised(att_server: ServerProcess) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    response = await upload(
        att_server, alice, conv, PNG, '../../etc/"pass"\r\nwd;.png', "image/png"
    )
    assert response.status_code == 201, response.text
    name = response.json()["filename"]
    assert "/" not in name and '"' not in name and "\r" not in name and ";" not in name
    assert name.endswith(".png")
    unicode = await upload(att_server, alice, conv, PNG, "affiche – été.png", "image/png")
    attachment = unicode.json()["id"]
    assert unicode.json()["filename"] == "affiche – été.png"
    got = await download(att_server, bob, attachment)
    assert got.status_code == 200 and got.content == PNG


async def test_direct_upload_with_a_presigned_url(
    att_server: ServerProcess, storage_backend: str
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    ask = {"conversationId": conv, "filename": "deck.pdf", "contentType": "application/pdf"}
    async with att_server.client(alice) as http:
        presigned = await http.post(
            "/api/messages/attachments/presign", json={**ask, "size": len(PDF)}
        )
        if storage_backend == "local":
            assert presigned.status_code == 400
            assert presigned.json()["error"]["code"] == "not_supported"
            return
        assert presigned.status_code == 201, presigned.text
        plan = presigned.json()
        early = await http.post(f"/api/messages/attachments/{plan['id']}/confirm")
        assert early.status_code == 409  # nothing uploaded yet
        async with httpx.AsyncClient(timeout=10) as browser:
            put = await browser.put(plan["url"], content=PDF, headers=plan["headers"])
        assert put.status_code == 200, put.text
        confirmed = await http.post(f"/api/messages/attachments/{plan['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["sha256"] == sha256(PDF)
    assert confirmed.json()["size"] == len(PDF)
    assert (await send(att_server, alice, conv, [plan["id"]])).status_code == 201
    got = await download(att_server, bob, plan["id"])
    assert got.content == PDF


@pytest.mark.s3_only
async def test_a_direct_upload_whose_bytes_lie_is_refused_at_confirm(
    att_server: ServerProcess, storage_backend: str
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    async with att_server.client(alice) as http:
        plan = (
            await http.post(
                "/api/messages/attachments/presign",
                json={
                    "conversationId": conv,
                    "filename": "deck.pdf",
                    "contentType": "application/pdf",
                    "size": 10,
                },
            )
        ).json()
        async with httpx.AsyncClient(timeout=10) as browser:
            await browser.put(plan["url"], content=PNG, headers=plan["headers"])
        confirmed = await http.post(f"/api/messages/attachments/{plan['id']}/confirm")
    assert confirmed.status_code == 415
    assert (await send(att_server, alice, conv, [plan["id"]])).status_code == 404


@pytest.mark.s3_only
async def test_unconfirmed_direct_uploads_cannot_be_attached(
    att_server: ServerProcess, storage_backend: str
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(att_server, alice, bob)
    async with att_server.client(alice) as http:
        plan = (
            await http.post(
                "/api/messages/attachments/presign",
                json={
                    "conversationId": conv,
                    "filename": "a.png",
                    "contentType": "image/png",
                    "size": 10,
                },
            )
        ).json()
    response = await send(att_server, alice, conv, [plan["id"]])
    assert response.status_code == 409


async def test_email_attachments_are_uploaded_with_a_service_token(
    att_server: ServerProcess,
) -> None:
    async with att_server.client(uid(), role="user") as http:
        refused = await http.post(
            "/api/email/attachments", files={"file": ("deck.pdf", PDF, "application/pdf")}
        )
    assert refused.status_code == 403
    async with att_server.client(uid("svc"), role="service") as http:
        stored = await http.post(
            "/api/email/attachments", files={"file": ("deck.pdf", PDF, "application/pdf")}
        )
    assert stored.status_code == 201, stored.text
    assert stored.json()["sha256"] == sha256(PDF)
    # An email upload is not a message attachment: nobody downloads it from the messages API.
    async with att_server.client(uid()) as http:
        assert (
            await http.get(f"/api/messages/attachments/{stored.json()['id']}")
        ).status_code == 404
