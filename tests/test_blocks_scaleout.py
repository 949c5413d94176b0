"""Blocks across processes (Redis broker): the blocker's sessions on every node are spared."""

from __future__ import annotations

from tests.conftest import Nodes
from tests.security.test_blocks_in_groups import (
    a_block_mid_session,
    a_blocked_users_message_reaches_the_blocker_as_skipped,
)


async def test_a_blocked_users_message_sent_on_another_node_reaches_the_blocker_as_skipped(
    cluster: Nodes,
) -> None:
    a, b = cluster(2)
    await a_blocked_users_message_reaches_the_blocker_as_skipped(a, b)


async def test_a_block_made_on_one_node_filters_the_blockers_open_session_on_another(
    cluster: Nodes,
) -> None:
    a, b = cluster(2)
    await a_block_mid_session(a, b)
