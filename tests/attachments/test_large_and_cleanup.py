"""A large file streams through in bounded memory; unattached uploads are swept; links expire."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.attachments.conftest import MakeServer, s3_client
from tests.attachments.helpers import PNG, download, send, uploaded
from tests.servers import ServerProcess, conversation, uid

MB = 1024 * 1024
LARGE = 50 * MB
# The server may grow by a few buffers (one S3 part of 5 MiB and its copy, the HTTP
# client's pool, allocator slack), never by the file: 50 MiB would show as >= 50 MiB.
RSS_MARGIN = 25 * MB
CHUNK = 256 * 1024


def memory(proc: ServerProcess) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of the server process, in bytes."""
    assert proc.proc is not None
    found = {}
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024
    return found


async def multipart(conversation_id: str, size: int, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    """A form with a `size`-byte zip file, generated as it is sent (never whole in memory)."""
    boundary = "b" + uuid.uuid4().hex
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="conversationId"\r\n\r\n'
        f"{conversation_id}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="rushes.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    sent = 0
    block = bytes(range(256)) * (CHUNK // 256)
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        if sent == 0:
            piece = b"PK\x03\x04" + piece[4:]
        digest.update(piece)
        sent += len(piece)
        yield piece
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_a_large_file_streams_without_memory_growing_with_its_size(
    make_att_server: MakeServer,
) -> None:
    server = make_att_server(ATTACHMENT_MAX_BYTES=str(60 * MB))
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    # Warm up the paths (imports, client pools) with a small upload first.
    await uploaded(server, alice, conv, PNG)
    before = memory(server)
    digest = hashlib.sha256()
    boundary_probe = multipart(conv, LARGE, digest)
    first = await anext(boundary_probe)
    boundary = first.split(b"\r\n", 1)[0][2:].decode()

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for piece in boundary_probe:
            yield piece

    async with server.client(alice) as http:
        http.timeout = httpx.Timeout(120)
        response = await http.post(
            "/api/messages/attachments",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert response.status_code == 201, response.text
    after = memory(server)
    info = response.json()
    assert info["size"] == LARGE
    assert info["sha256"] == digest.hexdigest()
    growth = after["VmHWM"] - before["VmRSS"]
    print(f"RSS before {before['VmRSS'] // MB} MiB, peak after {after['VmHWM'] // MB} MiB")
    assert growth < RSS_MARGIN, f"peak grew {growth / MB:.1f} MiB for a {LARGE // MB} MiB file"
    # And it comes back whole.
    assert (await send(server, alice, conv, [info["id"]])).status_code == 201
    got = hashlib.sha256()
    size = 0
    async with server.client(bob) as http:
        http.timeout = httpx.Timeout(120)
        start = await http.get(f"/api/messages/attachments/{info['id']}")
        url = start.headers["location"] if start.status_code == 302 else None
    async with httpx.AsyncClient(timeout=120) as plain:
        request_url = url or f"{server.url}/api/messages/attachments/{info['id']}"
        headers = {} if url else {"Authorization": f"Bearer {server.token(bob)}"}
        async with plain.stream("GET", request_url, headers=headers) as streamed:
            assert streamed.status_code == 200
            async for chunk in streamed.aiter_bytes():
                got.update(chunk)
                size += len(chunk)
    assert size == LARGE
    assert got.hexdigest() == digest.hexdigest()
    growth = memory(server)["VmHWM"] - before["VmRSS"]
    assert growth < RSS_MARGIN, f"peak grew {growth / MB:.1f} MiB after the download"


async def test_an_unattached_upload_is_removed(
    make_att_server: MakeServer, storage_backend: str, moto_s3: str
) -> None:
    server = make_att_server(ATTACHMENT_UNATTACHED_TTL="0.5", ATTACHMENT_SWEEP_INTERVAL="0.1")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    kept = await uploaded(server, alice, conv, PNG)
    assert (await send(server, alice, conv, [kept])).status_code == 201
    dropped = await uploaded(server, alice, conv, PNG)
    deadline = time.monotonic() + 10
    while (await download(server, alice, dropped)).status_code != 404:
        assert time.monotonic() < deadline, "the unattached upload was never removed"
        await asyncio.sleep(0.1)
    assert not _object_exists(server, storage_backend, moto_s3, dropped)
    assert _object_exists(server, storage_backend, moto_s3, kept)
    got = await download(server, bob, kept)
    assert got.status_code == 200 and got.content == PNG
    assert (await send(server, alice, conv, [dropped])).status_code == 404


def _object_exists(server: ServerProcess, backend: str, moto_s3: str, key: str) -> bool:
    if backend == "local":
        bucket = "pitchey-message-attachments"
        return (server.data_dir / "objects" / bucket / key).exists()
    client = s3_client(moto_s3)
    bucket = server.env["MESSAGE_ATTACHMENTS_BUCKET"]
    listed = client.list_objects_v2(Bucket=bucket, Prefix=key)  # type: ignore[attr-defined]
    return bool(listed.get("KeyCount"))


@pytest.mark.s3_only
async def test_a_download_link_expires_quickly(
    make_att_server: MakeServer, storage_backend: str
) -> None:
    server = make_att_server(ATTACHMENT_URL_TTL="1")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    attachment = await uploaded(server, alice, conv, PNG)
    async with server.client(bob) as http:
        response = await http.get(f"/api/messages/attachments/{attachment}")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["X-Amz-Expires"] == ["1"]
    signed = time.mktime(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")) - time.timezone
    assert abs(signed - time.time()) < 30
