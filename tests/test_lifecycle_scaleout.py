"""Member removal across processes: every node's rooms and membership caches hear of it."""

from __future__ import annotations

from tests.conftest import Nodes, a_removed_member_is_unsubscribed_on_another_node


async def test_a_removed_member_stops_receiving_on_another_node_within_a_second(
    cluster: Nodes,
) -> None:
    a, b = cluster(2)
    await a_removed_member_is_unsubscribed_on_another_node(a, b, within=1.0)
