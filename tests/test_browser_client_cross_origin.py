"""The browser client in a web app on its own origin (A), talking to the service on another (B).

The page (tests/browser/client-app.html) is served by a static HTTP server of the test's own,
imports the client from the service's /static URL and reaches the service only over CORS
(ALLOWED_ORIGINS=A) and the WebSocket origin check. Results are read back from page globals.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.chromium import Browser, Page
from tests.servers import ServerProcess, conversation, uid
from tests.services import PG_HOST, PG_PORT, create_pg_database, drop_pg_database
from tests.tcp_proxy import tcp_proxy

PAGES = Path(__file__).parent / "browser"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app_origin() -> Iterator[str]:
    """Origin A: the web app's page, served from a port of its own."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(PAGES)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def open_app(browser: Browser, origin: str, service: str) -> Page:
    page = await browser.page()
    await page.goto(f"{origin}/client-app.html?{urlencode({'service': service})}")
    title = await page.wait_for("document.title !== 'loading' && document.title")
    assert title == "ready", title
    return page


async def connect(page: Page, token: str, **options: Any) -> None:
    await page.evaluate(f"connect({json.dumps(token)}, {json.dumps(options)})")
    await page.wait_for("client.state === 'open'")


async def start(page: Page, expression: str) -> str:
    """Run a promise in the page; outcome() reads how it settled."""
    key = json.dumps(uid("outcome"))
    await page.evaluate(
        f"Promise.resolve().then(() => {expression}).then("
        f"(value) => {{ window[{key}] = {{ value }}; }},"
        f"(e) => {{ window[{key}] = {{ error: {{ code: e.code, ref: e.ref, message: e.message }} }}; }})"
    )
    return key


async def outcome(page: Page, key: str, timeout: float = 15.0) -> dict[str, Any]:
    """{"value": ...} or {"error": {code, ref, message}}."""
    settled: dict[str, Any] = await page.wait_for(f"window[{key}]", timeout)
    return settled


async def settle(page: Page, expression: str) -> dict[str, Any]:
    return await outcome(page, await start(page, expression))


async def send(server: ServerProcess, sender: str, conv: str, *contents: str) -> None:
    async with server.client(sender) as http:
        for content in contents:
            response = await http.post(
                "/api/messages/send", json={"conversationId": conv, "content": content}
            )
            assert response.status_code == 201, response.text


async def test_a_page_on_another_origin_pages_what_it_missed_over_rest_when_not_recovered(
    make_server: Callable[..., ServerProcess], browser: Browser, app_origin: str
) -> None:
    # A replay of at most 2 messages: missing 5 gets `recovered: false`.
    server = make_server(ALLOWED_ORIGINS=app_origin, WS_MAX_REPLAY="2")
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    # The page reaches the service through a proxy the test can cut, like a network drop.
    with tcp_proxy("127.0.0.1", server.port) as proxy:
        service = f"http://127.0.0.1:{proxy.port}"
        page = await open_app(browser, app_origin, service)
        await connect(page, server.token(bob), backoff={"initial": 50, "max": 200})
        subscribed = await settle(page, f"client.subscribe({json.dumps(conv)})")
        assert subscribed["value"]["conversationId"] == conv
        await send(server, alice, conv, "before the drop")
        await page.wait_for("events.message.length === 1")

        proxy.cut()
        # Each refused reconnect while cut is another `disconnected`: at least one is the drop.
        await page.wait_for("events.disconnected.length >= 1")
        await send(server, alice, conv, *(f"while away {i}" for i in range(5)))
        proxy.restore()

        await page.wait_for("events.subscribed.length === 2")
        shown = await page.wait_for(
            "events.message.length >= 6 && events.message.map((m) => [m.seq, m.content])"
        )
        assert shown == [[1, "before the drop"]] + [[i + 2, f"while away {i}"] for i in range(5)]
        assert await page.evaluate("events.subscribed[1].recovered") is False
        requests = await page.evaluate("requests")
        assert f"GET {service}/api/messages/{conv}?limit=100&after=1" in requests
        assert await page.evaluate("events.error.length") == 0
        await page.close()


async def test_a_page_on_another_origin_reads_and_marks_a_notification_read(
    make_server: Callable[..., ServerProcess], browser: Browser, app_origin: str
) -> None:
    server = make_server(ALLOWED_ORIGINS=app_origin)
    bob = uid()
    page = await open_app(browser, app_origin, server.url)
    await connect(page, server.token(bob))
    async with server.client(uid(), role="service") as http:
        response = await http.post(
            "/api/notifications/send",
            json={
                "userId": bob,
                "type": "marketplace_alert",
                "title": "A new pitch matches your interests",
                "message": "Night Owl is looking for co-producers.",
                "channels": ["in-app"],
            },
        )
    assert response.status_code == 202, response.text
    await page.wait_for("events.notification.length === 1")

    listed = await settle(page, "client.notifications({ unread: true })")
    assert [n["title"] for n in listed["value"]["items"]] == ["A new pitch matches your interests"]
    notification_id = listed["value"]["items"][0]["id"]
    marked = await settle(page, f"client.markNotificationRead({json.dumps(notification_id)})")

    assert marked == {"value": {"unreadCount": 0}}
    async with server.client(bob) as http:
        stored = (await http.get("/api/notifications")).json()["items"][0]
    assert stored["id"] == notification_id and stored["readAt"] is not None
    await page.close()


async def test_subscribe_rejects_with_not_found_for_a_conversation_the_user_is_not_in(
    make_server: Callable[..., ServerProcess], browser: Browser, app_origin: str
) -> None:
    server = make_server(ALLOWED_ORIGINS=app_origin)
    alice, bob, outsider = uid(), uid(), uid()
    conv = await conversation(server, alice, bob)
    page = await open_app(browser, app_origin, server.url)
    await connect(page, server.token(outsider))

    outcome = await settle(page, f"client.subscribe({json.dumps(conv)})")

    assert outcome["error"]["code"] == "not_found"
    assert outcome["error"]["ref"] == conv
    # Forgotten: a reconnect will not ask for it again.
    assert await page.evaluate(f"client.conversations.has({json.dumps(conv)})") is False
    await page.close()


async def test_close_rejects_a_subscribe_still_waiting_for_its_answer(
    make_server: Callable[..., ServerProcess], browser: Browser, app_origin: str
) -> None:
    server = make_server(ALLOWED_ORIGINS=app_origin)
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    page = await open_app(browser, app_origin, server.url)
    await connect(page, server.token(alice))

    outcome = await settle(
        page,
        f"(() => {{ const p = client.subscribe({json.dumps(conv)}); client.close(); return p; }})()",
    )

    assert outcome["error"]["code"] == "closed"
    await page.close()


async def rooms_active(server: ServerProcess) -> float:
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    return float(
        next(
            line for line in text.splitlines() if line.startswith("pitchey_rooms_active ")
        ).split()[1]
    )


async def test_subscribe_does_not_reject_on_unavailable_and_resolves_when_the_retry_succeeds(
    make_server: Callable[..., ServerProcess], browser: Browser, app_origin: str
) -> None:
    database = create_pg_database()
    try:
        # The server reaches PostgreSQL through a proxy the test cuts: a database outage.
        with tcp_proxy(PG_HOST, PG_PORT) as pg:
            server = make_server(
                DATABASE_URL=database.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{pg.port}"),
                ALLOWED_ORIGINS=app_origin,
                OUTAGE_RETRY_AFTER="0.5",
                ROOM_IO_TIMEOUT="2",
            )
            alice, bob = uid(), uid()
            conv = await conversation(server, alice, bob)
            page = await open_app(browser, app_origin, server.url)
            await connect(page, server.token(alice))
            # Subscribed once and gone: the room stops, and starting it again needs the database.
            assert "value" in await settle(page, f"client.subscribe({json.dumps(conv)})")
            await page.evaluate(f"client.unsubscribe({json.dumps(conv)})")
            deadline = time.monotonic() + 10
            while await rooms_active(server) != 0:
                assert time.monotonic() < deadline, "the room did not stop"
            pg.cut()
            try:
                key = await start(page, f"client.subscribe({json.dumps(conv)})")
                await page.wait_for("events.error.some((e) => e.code === 'unavailable')")
                assert await page.evaluate(f"window[{key}]") is None
            finally:
                pg.restore()

            settled = await outcome(page, key)

            assert settled["value"]["conversationId"] == conv
            await page.close()
            server.stop()
    finally:
        drop_pg_database(database)
