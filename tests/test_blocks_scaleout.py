"""Blocks across processes (Redis broker): the blocker's sessions on every node are spared."""

from __future__ import annotations

from tests.security.test_blocks_in_groups import say, timeline
from tests.security.test_lifecycle_blocks import block
from tests.servers import conversation, uid, ws_client
from tests.test_scaleout import Cluster, cluster

__all__ = ["cluster"]  # the fixture, shared with test_scaleout


async def test_a_blocked_users_message_sent_on_another_node_reaches_the_blocker_as_skipped(
    cluster: Cluster,
) -> None:
    a, b = cluster(2)
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    conv = await conversation(a, alice, bob, carol, title="Festival slate")
    await block(b, alice, bob)
    async with ws_client(a, alice) as on_a, ws_client(b, carol) as on_b:
        await on_a.subscribe(conv)
        await on_b.subscribe(conv)
        await say(b, bob, conv, "from bob")
        await say(b, carol, conv, "from carol")
        assert await timeline(on_a, 2) == [("skipped", 1, ""), ("message", 2, "from carol")]
        assert await timeline(on_b, 2) == [
            ("message", 1, "from bob"),
            ("message", 2, "from carol"),
        ]


async def test_a_block_made_on_one_node_filters_the_blockers_open_session_on_another(
    cluster: Cluster,
) -> None:
    a, b = cluster(2)
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    conv = await conversation(a, alice, bob, carol, title="Festival slate")
    async with ws_client(a, alice) as on_a:
        await on_a.subscribe(conv)
        await say(b, bob, conv, "before")
        assert await timeline(on_a, 1) == [("message", 1, "before")]
        # Made on b while alice's session is on a: the notice reaches a before the message.
        await block(b, alice, bob)
        await say(b, bob, conv, "after the block")
        await say(a, carol, conv, "carol")
        assert await timeline(on_a, 2) == [("skipped", 2, ""), ("message", 3, "carol")]
        async with b.client(alice) as http:
            assert (await http.delete(f"/api/users/me/blocks/{bob}")).status_code == 204
        await say(b, bob, conv, "after the unblock")
        assert await timeline(on_a, 1) == [("message", 4, "after the unblock")]
