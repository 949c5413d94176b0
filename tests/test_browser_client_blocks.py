"""The browser client in a group where its user blocks someone: what they write never shows,
and the stand-ins (`skipped`, holes in history) are not taken for lost messages."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.chromium import Browser, Page
from tests.security.test_lifecycle_blocks import block
from tests.servers import ServerProcess, conversation, send_rest, uid
from tests.test_browser_client import open_demo, texts

# Counts the client's resubscribes: a gap it took for a loss would show as one.
COUNT_SUBSCRIBES = """(() => {
  const c = window.pitchey.client;
  const original = c._subscribe.bind(c);
  window.subscribes = 0;
  c._subscribe = (id) => { window.subscribes += 1; return original(id); };
})()"""


def last_seq(conv: str) -> str:
    return f"window.pitchey.client.conversations.get({json.dumps(conv)}).lastSeq"


async def _group(server: ServerProcess, browser: Browser) -> tuple[Page, str, str, str, str]:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    conv = await conversation(server, alice, bob, carol, title="Slate")
    await block(server, alice, bob)
    page = await open_demo(browser, server, alice, conv)
    await page.evaluate(COUNT_SUBSCRIBES)
    return page, alice, bob, carol, conv


async def test_live_skipped_frames_advance_the_seq_without_showing_or_resubscribing(
    make_server: Callable[..., ServerProcess], browser: Browser
) -> None:
    server = make_server()
    page, _, bob, carol, conv = await _group(server, browser)
    await send_rest(server, bob, conv, "from bob")
    await send_rest(server, bob, conv, "bob again")
    await send_rest(server, carol, conv, "from carol")
    await page.wait_for(f"{last_seq(conv)} === 3")
    assert await page.evaluate(texts()) == [f"{carol}: from carol"]
    assert await page.evaluate("window.subscribes") == 0
    await page.close()


async def test_a_gap_paged_over_rest_with_blocked_messages_in_it_is_recovered_once(
    make_server: Callable[..., ServerProcess], browser: Browser
) -> None:
    # A replay of more than one event is refused: the client pages the gap over REST.
    server = make_server(WS_MAX_REPLAY="1")
    page, _, bob, carol, conv = await _group(server, browser)
    await page.evaluate(
        "window.pitchey.client.closedByUser = true; window.pitchey.client.socket.close()"
    )
    await page.wait_for("window.pitchey.client.socket === null")
    await send_rest(server, bob, conv, "while away, bob")
    await send_rest(server, carol, conv, "while away, carol")
    await send_rest(server, bob, conv, "bob last")
    await page.evaluate(
        "window.pitchey.client.closedByUser = false; window.pitchey.client._connect()"
    )
    await page.wait_for(f"{last_seq(conv)} === 3")
    await send_rest(server, carol, conv, "live again")
    await page.wait_for(f"{texts()}.length === 2")
    assert await page.evaluate(texts()) == [f"{carol}: while away, carol", f"{carol}: live again"]
    # The one subscribe is the reconnect's own: no loop over holes in the history.
    assert await page.evaluate("window.subscribes") == 1
    await page.close()
