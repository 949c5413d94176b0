"""An erased user's attachments go with their messages: unreachable at once, then removed."""

from __future__ import annotations

import asyncio
import time

from tests.attachments.conftest import MakeServer
from tests.attachments.helpers import PNG, download, send, uploaded
from tests.attachments.test_large_and_cleanup import _object_exists
from tests.servers import conversation, uid


async def test_erasing_a_user_deletes_their_attachments_from_storage(
    make_att_server: MakeServer, storage_backend: str, moto_s3: str
) -> None:
    server = make_att_server(ATTACHMENT_SWEEP_INTERVAL="0.1")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    attached = await uploaded(server, alice, conv, PNG)
    loose = await uploaded(server, alice, conv, PNG)
    sent = await send(server, alice, conv, [attached])
    assert sent.status_code == 201, sent.text
    async with server.client("platform", "service") as platform:
        assert (await platform.delete(f"/api/users/{alice}")).status_code == 202

    deadline = time.monotonic() + 10
    while (await download(server, bob, attached)).status_code != 404:
        assert time.monotonic() < deadline, "the erased user's attachment stayed downloadable"
        await asyncio.sleep(0.05)
    for attachment in (attached, loose):
        while _object_exists(server, storage_backend, moto_s3, attachment):
            assert time.monotonic() < deadline, f"{attachment} was never removed"
            await asyncio.sleep(0.1)
