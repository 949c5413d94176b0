"""A deleted message's attachments go with it: unreachable at once, removed from storage."""

from __future__ import annotations

import asyncio
import time

from tests.attachments.conftest import MakeServer
from tests.attachments.helpers import PNG, download, send, uploaded
from tests.attachments.test_large_and_cleanup import _object_exists
from tests.servers import conversation, uid


async def test_deleting_a_message_deletes_its_attachments_from_storage(
    make_att_server: MakeServer, storage_backend: str, moto_s3: str
) -> None:
    server = make_att_server(ATTACHMENT_SWEEP_INTERVAL="0.1")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    attachment = await uploaded(server, alice, conv, PNG)
    sent = await send(server, alice, conv, [attachment])
    assert sent.status_code == 201, sent.text
    async with server.client(alice) as http:
        assert (await http.delete(f"/api/messages/{sent.json()['id']}")).status_code == 204
    assert (await download(server, bob, attachment)).status_code == 404
    deadline = time.monotonic() + 10
    while _object_exists(server, storage_backend, moto_s3, attachment):
        assert time.monotonic() < deadline, "the deleted message's attachment was never removed"
        await asyncio.sleep(0.1)
