"""A real browser page connects to /ws with a token and shows a message sent over REST."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.chromium import Browser
from tests.servers import ROOT, ServerProcess, conversation, uid

PAGES = Path(__file__).parent / "browser"
OUTPUT = ROOT / "test-output"


@pytest.fixture
def page_server() -> Iterator[str]:
    """The test page, served from its own origin on localhost like a web app would be."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(PAGES))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


async def test_browser_page_receives_message_sent_over_rest(
    make_server: Callable[..., ServerProcess], browser: Browser, page_server: str
) -> None:
    server = make_server(ALLOWED_ORIGINS=page_server)
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    query = urlencode({"ws": server.ws_url, "token": server.token(bob), "conversation": conv})
    page = await browser.page()
    try:
        await page.goto(f"{page_server}/chat.html?{query}")
        await page.wait_for("document.getElementById('status').textContent === 'subscribed'")
        async with server.client(alice) as http:
            response = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": "Loved the pitch!"}
            )
        assert response.status_code == 201
        shown = await page.wait_for(
            "document.getElementById('messages').textContent.includes('Loved the pitch!') && "
            "document.getElementById('messages').textContent"
        )
        assert shown == f"{alice}: Loved the pitch!"
        await page.screenshot(OUTPUT / "browser-chat.png")
    finally:
        await page.close()


async def test_browser_page_from_unlisted_origin_is_refused(
    make_server: Callable[..., ServerProcess], browser: Browser, page_server: str
) -> None:
    server = make_server()  # ALLOWED_ORIGINS not set: only same-origin pages may connect
    conv = await conversation(server, uid(), uid())
    query = urlencode({"ws": server.ws_url, "token": server.token(uid()), "conversation": conv})
    page = await browser.page()
    try:
        await page.goto(f"{page_server}/chat.html?{query}")
        status = await page.wait_for(
            "document.getElementById('status').textContent.startsWith('closed') && "
            "document.getElementById('status').textContent"
        )
        assert status == "closed 1006"
    finally:
        await page.close()
