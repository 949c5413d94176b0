"""A presigned upload URL stays writable until it expires: confirm must take the bytes
away from it, so what was confirmed is what every download serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from tests.attachments.helpers import PDF, download, send, sha256
from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, conversation, moto_process, uid

HTML = b"<!doctype html><script>location='https://evil.example/'</script>"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with moto_process() as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        buckets = {"MESSAGE_ATTACHMENTS_BUCKET": uid("msg"), "EMAIL_ATTACHMENTS_BUCKET": uid("eml")}
        for bucket in buckets.values():
            client.create_bucket(Bucket=bucket)
        env = {
            **TEST_ENV,
            **buckets,
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": endpoint,
            "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": "testing",
        }
        proc = ServerProcess(Path(tmp_path_factory.mktemp("presign-overwrite")), env)
        try:
            proc.start()
            yield proc
        finally:
            proc.stop()


async def _presigned_pdf(server: ServerProcess, user: str, conv: str) -> dict[str, object]:
    async with server.client(user) as http:
        answer = await http.post(
            "/api/messages/attachments/presign",
            json={
                "conversationId": conv,
                "filename": "deck.pdf",
                "contentType": "application/pdf",
                "size": len(PDF),
            },
        )
    assert answer.status_code == 201, answer.text
    plan: dict[str, object] = answer.json()
    return plan


async def test_a_second_put_after_confirm_does_not_change_the_download(
    s3_server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(s3_server, alice, bob)
    plan = await _presigned_pdf(s3_server, alice, conv)
    url, headers = str(plan["url"]), dict(plan["headers"])  # type: ignore[call-overload]
    async with httpx.AsyncClient(timeout=10) as browser:
        assert (await browser.put(url, content=PDF, headers=headers)).status_code == 200
        async with s3_server.client(alice) as http:
            confirmed = await http.post(f"/api/messages/attachments/{plan['id']}/confirm")
        assert confirmed.status_code == 200 and confirmed.json()["sha256"] == sha256(PDF)
        assert (await send(s3_server, alice, conv, [str(plan["id"])])).status_code == 201
        # The URL has not expired: the attacker writes through it again.
        await browser.put(url, content=HTML, headers=headers)
    got = await download(s3_server, bob, str(plan["id"]))
    assert got.status_code == 200
    assert got.content == PDF and sha256(got.content) == confirmed.json()["sha256"]


async def test_a_second_confirm_after_a_second_put_keeps_the_confirmed_bytes(
    s3_server: ServerProcess,
) -> None:
    alice, bob = uid(), uid()
    conv = await conversation(s3_server, alice, bob)
    plan = await _presigned_pdf(s3_server, alice, conv)
    url, headers = str(plan["url"]), dict(plan["headers"])  # type: ignore[call-overload]
    async with httpx.AsyncClient(timeout=10) as browser:
        await browser.put(url, content=PDF, headers=headers)
        async with s3_server.client(alice) as http:
            first = await http.post(f"/api/messages/attachments/{plan['id']}/confirm")
            await browser.put(url, content=HTML, headers=headers)
            again = await http.post(f"/api/messages/attachments/{plan['id']}/confirm")
    assert first.status_code == again.status_code == 200
    assert again.json()["sha256"] == sha256(PDF)
    assert (await send(s3_server, alice, conv, [str(plan["id"])])).status_code == 201
    assert (await download(s3_server, bob, str(plan["id"]))).content == PDF
