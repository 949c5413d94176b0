"""Attacks on the push API against the real server: every one is refused with a 4xx."""

from __future__ import annotations

from typing import Any

import pytest

from tests.push.conftest import notify, pushes_to, subscribed
from tests.servers import ServerProcess, uid
from tests.standins.push_service import PushServiceStandin


def _sub(endpoint: str, pushsvc: PushServiceStandin, **keys: str) -> dict[str, Any]:
    body = pushsvc.browser().subscription()
    body["endpoint"] = endpoint
    body["keys"].update(keys)
    return body


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.7/push/x",
        "https://[::ffff:127.0.0.1]/push/x",
        "ftp://push.example.com/x",
        "https://user:pw@push.example.com/x",
        "https://push.example.com/" + "a" * 2100,
    ],
)
async def test_endpoints_a_push_service_cannot_have_are_refused(
    make_push_server: Any, pushsvc: PushServiceStandin, endpoint: str
) -> None:
    server: ServerProcess = make_push_server(PUSH_ALLOW_PRIVATE="false")
    async with server.client(uid()) as http:
        response = await http.post("/api/push/subscriptions", json=_sub(endpoint, pushsvc))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_a_name_resolving_to_loopback_is_never_posted_to(
    make_push_server: Any, pushsvc: PushServiceStandin
) -> None:
    server: ServerProcess = make_push_server(PUSH_ALLOW_PRIVATE="false")
    user_id = uid()
    browser = pushsvc.browser()
    body = browser.subscription()
    # localhost passes the literal check at subscribe; the send resolves it and refuses.
    body["endpoint"] = body["endpoint"].replace("127.0.0.1", "localhost")
    async with server.client(user_id) as http:
        assert (await http.post("/api/push/subscriptions", json=body)).status_code == 201
    await notify(server, user_id, type="nda_request")
    # A second server allowing loopback proves pushes flow; this one's must not arrive.
    allowed: ServerProcess = make_push_server(PUSH_ALLOW_PRIVATE="true")
    probe, probe_browser = await subscribed(allowed, pushsvc)
    await notify(allowed, probe, type="nda_request")
    await pushes_to(pushsvc, probe_browser)
    assert pushsvc.received(browser) == []


@pytest.mark.parametrize(
    "keys",
    [
        {"p256dh": "B" + "A" * 86},  # 65 bytes, but not a point on P-256
        {"auth": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"},  # 21 bytes, not 16
        {"p256dh": "not base64 at all!!" * 5},
    ],
)
async def test_keys_that_are_not_a_p256_point_and_a_16_byte_secret_are_refused(
    server: ServerProcess, pushsvc: PushServiceStandin, keys: dict[str, str]
) -> None:
    body = pushsvc.browser().subscription()
    body["keys"].update(keys)
    async with server.client(uid()) as http:
        response = await http.post("/api/push/subscriptions", json=body)
    assert response.status_code == 422, response.text


async def test_an_oversized_subscription_body_is_413(server: ServerProcess) -> None:
    async with server.client(uid()) as http:
        response = await http.post(
            "/api/push/subscriptions",
            content=b'{"endpoint": "' + b"a" * (2 * 1024 * 1024) + b'"}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_a_user_keeps_at_most_ten_subscriptions_the_oldest_replaced(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id = uid()
    browsers = [pushsvc.browser() for _ in range(11)]
    async with server.client(user_id) as http:
        ids = []
        for browser in browsers:
            response = await http.post("/api/push/subscriptions", json=browser.subscription())
            assert response.status_code == 201
            ids.append(response.json()["id"])
        listed = {s["id"] for s in (await http.get("/api/push/subscriptions")).json()["items"]}
    assert listed == set(ids[1:])


async def test_another_user_registering_the_same_endpoint_takes_it_over(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    first, browser = await subscribed(server, pushsvc)
    second = uid()
    async with server.client(second) as http:
        taken = await http.post("/api/push/subscriptions", json=browser.subscription())
    async with server.client(first) as http:
        left = (await http.get("/api/push/subscriptions")).json()["items"]

    await notify(server, first, type="nda_request", title="for the first user")
    await notify(server, second, type="nda_request", title="for the second user")

    (push,) = await pushes_to(pushsvc, browser)
    assert taken.status_code == 201 and left == []
    assert push.payload["title"] == "for the second user"


async def test_a_push_body_stays_under_4kb_whatever_the_message(
    server: ServerProcess, pushsvc: PushServiceStandin
) -> None:
    user_id, browser = await subscribed(server, pushsvc)

    await notify(server, user_id, type="nda_request", title="t" * 200, message="💥" * 2000)

    (push,) = await pushes_to(pushsvc, browser)
    assert len(push.payload["title"]) <= 120 and 0 < len(push.payload["body"]) <= 500
    assert pushsvc.refused == []
