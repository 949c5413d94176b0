"""Member removal across processes: every node's rooms and membership caches hear of it."""

from __future__ import annotations

import time

from tests.servers import conversation, uid, ws_client
from tests.test_scaleout import Cluster, cluster, send_rest  # noqa: F401 (fixture)


async def test_a_removed_member_stops_receiving_on_another_node_within_a_second(
    cluster: Cluster,  # noqa: F811
) -> None:
    a, b = cluster(2)
    alice, bob, carol = uid(), uid(), uid()
    conv = await conversation(a, alice, bob, carol, title="deal")
    async with ws_client(b, carol) as c:
        await c.subscribe(conv)
        await send_rest(a, alice, conv, "hello all")
        assert (await c.messages(1))[0]["content"] == "hello all"
        started = time.monotonic()
        async with a.client(alice) as http:
            response = await http.delete(f"/api/messages/conversations/{conv}/participants/{carol}")
            assert response.status_code == 204
        unsubscribed = await c.expect("unsubscribed", timeout=1.0)
        assert unsubscribed["reason"] == "removed" and time.monotonic() - started < 1.0
        await send_rest(a, alice, conv, "carol is gone")
        # Node b forgot carol's membership too: her send there is refused.
        await c.send({"type": "send", "conversationId": conv, "content": "let me in"})
        error = await c.expect("error")
        assert error["code"] == "not_found"
        assert not [f for f in c.seen if f["type"] == "message" and f["message"]["seq"] > 1]
