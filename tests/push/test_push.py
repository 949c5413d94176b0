"""Web Push end to end: our server, a push service stand-in that checks VAPID and decrypts.

Every module-level test runs on SQLite and on PostgreSQL (the `backend` fixture).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.push.conftest import (
    COALESCE,
    VAPID_PUBLIC,
    Pair,
    notify,
    pushes_to,
    set_preferences,
    settled_pushes,
    subscribed,
)
from tests.servers import ServerProcess, conversation, send_rest, uid, ws_client
from tests.standins.push_service import PushServiceStandin


async def test_the_public_key_is_given_to_any_authenticated_user(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        response = await http.get("/api/push/public-key")
    async with server.client("x", "service") as anonymous:
        anonymous.headers.pop("Authorization")
        refused = await anonymous.get("/api/push/public-key")
    assert response.status_code == 200 and response.json() == {"publicKey": VAPID_PUBLIC}
    assert refused.status_code == 401


async def test_a_critical_notification_reaches_the_browser_signed_and_encrypted(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)

    notification_id = await notify(
        server, user_id, type="nda_request", title="NDA requested", message="Bob asks"
    )

    (push,) = await pushes_to(pushsvc, browser)
    assert push.payload["title"] == "NDA requested" and push.payload["body"] == "Bob asks"
    assert push.payload["notificationId"] == notification_id
    assert push.payload["path"] == "/notifications"
    assert push.headers["urgency"] == "high" and push.headers["ttl"] == "86400"
    assert pushsvc.refused == []


async def test_a_notification_link_on_the_app_becomes_the_push_path(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)
    await set_preferences(server, user_id, {"types": {"system": {"push": True}}})

    await notify(server, user_id, data={"url": "https://pitchey.com/pitches/42?tab=nda"})
    await notify(server, user_id, data={"url": "https://evil.example/phish"})

    pushes = await pushes_to(pushsvc, browser, 2)
    assert sorted(p.payload["path"] for p in pushes) == ["/notifications", "/pitches/42?tab=nda"]
    assert {p.headers["urgency"] for p in pushes} == {"normal"}


async def test_the_same_endpoint_again_updates_and_never_duplicates(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id = uid()
    browser = pushsvc.browser()
    async with server.client(user_id) as http:
        first = await http.post("/api/push/subscriptions", json=browser.subscription("Firefox"))
        again = await http.post("/api/push/subscriptions", json=browser.subscription("Firefox 2"))
        listed = (await http.get("/api/push/subscriptions")).json()["items"]
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert [(s["id"], s["userAgent"]) for s in listed] == [(first.json()["id"], "Firefox 2")]


async def test_a_user_deletes_only_their_own_subscriptions(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    owner, _ = await subscribed(server, pushsvc)
    async with server.client(owner) as http:
        (mine,) = (await http.get("/api/push/subscriptions")).json()["items"]
        async with server.client(uid()) as other:
            stolen = await other.delete(f"/api/push/subscriptions/{mine['id']}")
        deleted = await http.delete(f"/api/push/subscriptions/{mine['id']}")
        again = await http.delete(f"/api/push/subscriptions/{mine['id']}")
        left = (await http.get("/api/push/subscriptions")).json()["items"]
    assert stolen.status_code == 404
    assert deleted.status_code == 204 and again.status_code == 404 and left == []


async def test_a_410_from_the_push_service_deletes_the_subscription(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)
    pushsvc.answer(browser, 410)

    await notify(server, user_id, type="investment_received")
    await pushes_to(pushsvc, browser)

    async with server.client(user_id) as http:

        async def gone() -> bool:
            return (await http.get("/api/push/subscriptions")).json()["items"] == []

        deadline = time.monotonic() + 5
        while not await gone():
            assert time.monotonic() < deadline, "the subscription was not deleted"
            await asyncio.sleep(0.05)


async def test_a_429_is_retried_no_sooner_than_retry_after(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)
    pushsvc.answer(browser, 429, **{"Retry-After": "1"})

    await notify(server, user_id, type="nda_approved")

    first, second = await pushes_to(pushsvc, browser, 2)
    assert first.payload == second.payload
    assert second.at - first.at >= 0.95


async def test_a_500_is_retried_with_backoff(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)
    pushsvc.answer(browser, 500)
    pushsvc.answer(browser, 503)

    await notify(server, user_id, type="nda_rejected")

    pushes = await pushes_to(pushsvc, browser, 3)
    assert len({p.payload["notificationId"] for p in pushes}) == 1


async def test_switching_a_type_push_off_stops_its_pushes(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)
    await set_preferences(server, user_id, {"types": {"nda_request": {"push": False}}})

    await notify(server, user_id, type="nda_request", title="silenced")
    await notify(server, user_id, type="nda_approved", title="allowed")

    pushes = await settled_pushes(pushsvc, browser)
    assert [p.payload["title"] for p in pushes] == ["allowed"]


async def test_preferences_show_the_push_defaults(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        types = (await http.get("/api/notifications/preferences")).json()["types"]
    assert types["nda_request"]["push"] and types["unread_messages"]["push"]
    assert not types["production_update"]["push"] and not types["marketplace_alert"]["push"]


async def test_non_critical_push_only_types_default_off(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)

    await notify(server, user_id, type="system", title="not pushed")
    await notify(server, user_id, type="investment_confirmed", title="pushed")

    pushes = await settled_pushes(pushsvc, browser)
    assert [p.payload["title"] for p in pushes] == ["pushed"]


def _quiet_now() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }


async def test_quiet_hours_hold_non_critical_pushes_but_not_critical_ones(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)
    await set_preferences(
        server,
        user_id,
        {"types": {"system": {"push": True}}, "quietHours": _quiet_now(), "timezone": "UTC"},
    )

    await notify(server, user_id, type="system", title="held")
    await notify(server, user_id, type="system", title="urgent", priority="critical")
    await notify(server, user_id, type="nda_request", title="critical type")

    pushes = await settled_pushes(pushsvc, browser, 2)
    assert sorted(p.payload["title"] for p in pushes) == ["critical type", "urgent"]


async def test_channels_without_push_send_no_push(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)

    await notify(server, user_id, type="nda_request", title="in-app only", channels=["in-app"])
    await notify(server, user_id, type="nda_request", title="push only", channels=["push"])

    pushes = await settled_pushes(pushsvc, browser)
    assert [p.payload["title"] for p in pushes] == ["push only"]


# ---- unread messages ----------------------------------------------------------------


async def test_an_offline_user_gets_a_push_titled_with_the_sender_and_no_stranger_text(
    server: ServerProcess, pushsvc: PushServiceStandin, pair: Pair, direct: str
) -> None:
    await send_rest(server, pair.alice, direct, "click this totally safe link")

    (push,) = await pushes_to(pushsvc, pair.browser)
    assert push.payload["title"] == pair.alice.title()
    assert push.payload["body"] == "New message"
    assert push.payload["path"] == f"/messages/{direct}"
    assert push.payload["type"] == "unread_messages"


async def test_the_text_is_quoted_once_the_recipient_has_written_in_the_conversation(
    server: ServerProcess, pushsvc: PushServiceStandin, pair: Pair, direct: str
) -> None:
    await send_rest(server, pair.bob, direct, "hi Alice")

    await send_rest(server, pair.alice, direct, "see you at the screening")

    (push,) = await pushes_to(pushsvc, pair.browser)
    assert push.payload["body"] == "see you at the screening"


async def test_no_push_while_the_user_has_a_live_session_in_the_conversation(
    server: ServerProcess, pushsvc: PushServiceStandin, pair: Pair
) -> None:
    watched = await conversation(server, pair.alice, pair.bob, title="watched")
    elsewhere = await conversation(server, pair.alice, pair.bob, title="elsewhere")

    async with ws_client(server, pair.bob) as ws:
        await ws.subscribe(watched)
        await send_rest(server, pair.alice, watched, "seen live")
        await ws.expect("message")
        await send_rest(server, pair.alice, elsewhere, "not seen")
        await settled_pushes(pushsvc, pair.browser)
    assert [p.payload["conversationId"] for p in pushsvc.received(pair.browser)] == [elsewhere]


async def test_unread_pushes_are_coalesced_per_conversation(
    server: ServerProcess, pushsvc: PushServiceStandin, pair: Pair, direct: str
) -> None:
    await send_rest(server, pair.alice, direct, "one")
    (first,) = await pushes_to(pushsvc, pair.browser)
    await send_rest(server, pair.alice, direct, "two")
    await send_rest(server, pair.alice, direct, "three")
    await asyncio.sleep(COALESCE / 2)
    assert len(pushsvc.received(pair.browser)) == 1

    _, second = await pushes_to(pushsvc, pair.browser, 2, timeout=COALESCE + 5)
    assert second.at - first.at >= COALESCE * 0.9
    await asyncio.sleep(0.3)
    assert len(pushsvc.received(pair.browser)) == 2


async def test_a_read_conversation_is_not_pushed_about(
    server: ServerProcess, pushsvc: PushServiceStandin, pair: Pair, direct: str
) -> None:
    await send_rest(server, pair.alice, direct, "one")
    await pushes_to(pushsvc, pair.browser)

    await send_rest(server, pair.alice, direct, "two")
    async with server.client(pair.bob) as http:
        page = (await http.get(f"/api/messages/{direct}")).json()
        newest = page["items"][-1]["id"]
        assert (await http.post(f"/api/messages/{newest}/read")).status_code == 200
    await asyncio.sleep(COALESCE + 0.5)
    assert len(pushsvc.received(pair.browser)) == 1


async def test_unread_pushes_follow_the_preference(
    server: ServerProcess, pushsvc: PushServiceStandin, pair: Pair, direct: str
) -> None:
    await set_preferences(server, pair.bob, {"types": {"unread_messages": {"push": False}}})

    await send_rest(server, pair.alice, direct, "muted")
    await notify(server, pair.bob, type="nda_request", title="still pushed")

    pushes = await settled_pushes(pushsvc, pair.browser, settle=0.5)
    assert [p.payload["title"] for p in pushes] == ["still pushed"]


async def test_past_the_rate_limit_only_critical_notifications_are_pushed(
    make_push_server: Any, pushsvc: PushServiceStandin
) -> None:
    server: ServerProcess = make_push_server(NOTIFICATION_RATE_LIMIT_PER_MINUTE="1")
    user_id, browser = await subscribed(server, pushsvc)
    await set_preferences(server, user_id, {"types": {"system": {"push": True}}})

    await notify(server, user_id, title="first")
    await notify(server, user_id, title="over the limit")
    await notify(server, user_id, type="nda_request", title="critical")

    pushes = await settled_pushes(pushsvc, browser, 2)
    assert sorted(p.payload["title"] for p in pushes) == ["critical", "first"]
