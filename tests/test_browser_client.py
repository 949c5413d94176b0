"""The shipped browser client (/static/pitchey-comms.js) on the demo page, in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlencode

from tests.chromium import Browser, Page
from tests.servers import ROOT, ServerProcess, conversation, uid

OUTPUT = ROOT / "test-output"


async def open_demo(browser: Browser, server: ServerProcess, user: str, conv: str) -> Page:
    page = await browser.page()
    query = urlencode({"token": server.token(user), "conversation": conv})
    await page.goto(f"{server.url}/demo?{query}")
    await page.wait_for(
        "window.pitchey && window.pitchey.client && window.pitchey.client.state === 'open'"
    )
    await page.wait_for(
        f"window.pitchey.client.conversations.get({json.dumps(conv)})?.subscribed === true"
    )
    return page


def texts() -> str:
    return "[...document.querySelectorAll('#messages li')].map(li => li.textContent)"


async def test_two_pages_chat_and_an_offline_page_misses_nothing(
    make_server: Callable[..., ServerProcess], browser: Browser
) -> None:
    server = make_server()
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    a = await open_demo(browser, server, alice, conv)
    b = await open_demo(browser, server, bob, conv)
    # A page sends through the client; the other shows it.
    await a.evaluate(f"window.pitchey.client.send({json.dumps(conv)}, 'hello from alice')")
    await b.wait_for(f"{texts()}.includes('{alice}: hello from alice')")

    # Bob goes offline (the connection drops and does not come back yet)...
    await b.evaluate(
        "window.pitchey.client.closedByUser = true; window.pitchey.client.socket.close()"
    )
    await b.wait_for("window.pitchey.client.socket === null")
    for i in range(5):
        await a.evaluate(f"window.pitchey.client.send({json.dumps(conv)}, 'while away {i}')")
    await a.wait_for(f"{texts()}.length === 6")
    # ...and comes back: the client resubscribes with `since` and gets everything, in order, once.
    await b.evaluate("window.pitchey.client.closedByUser = false; window.pitchey.client._connect()")
    await b.wait_for(f"{texts()}.length === 6")
    shown = await b.evaluate(texts())
    assert shown == [f"{alice}: hello from alice"] + [f"{alice}: while away {i}" for i in range(5)]
    await b.screenshot(OUTPUT / "browser-client-recovered.png")
    await a.close()
    await b.close()


async def test_a_page_receives_a_notification_live(
    make_server: Callable[..., ServerProcess], browser: Browser
) -> None:
    server = make_server()
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    page = await open_demo(browser, server, bob, conv)
    async with server.client(uid(), role="service") as http:
        response = await http.post(
            "/api/notifications/send",
            json={
                "userId": bob,
                "type": "marketplace_alert",
                "title": "A new pitch matches your interests",
                "message": "Night Owl, a neo-noir feature, is looking for co-producers.",
                "channels": ["in-app"],
            },
        )
    assert response.status_code == 202, response.text
    shown = await page.wait_for(
        "document.querySelector('#notifications li')?.textContent.includes('Night Owl') && "
        "[document.querySelector('#notifications li').textContent, "
        "document.getElementById('unread').textContent]"
    )
    assert shown[0].startswith("A new pitch matches your interests")
    assert shown[1] == "1"
    await page.screenshot(OUTPUT / "browser-notification.png")
    await page.close()
