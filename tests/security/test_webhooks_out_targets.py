"""Webhooks out never reach this machine or its private networks (SSRF), nor follow redirects.

An admin token chooses webhook URLs; without these checks it could make the service POST
to the cloud metadata service, a database port or the admin interface on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.email.support import eventually
from tests.webhooks_out.support import Hooked, make_hooked, receiver, sendgrid

__all__ = ["make_hooked", "receiver", "sendgrid"]  # fixtures used below

MakeHooked = Callable[..., Any]
PRODUCTION_LIKE = {"WEBHOOK_ALLOW_PRIVATE": "false"}


PRIVATE_HOSTS = [
    "127.0.0.1",
    "10.0.0.5",
    "169.254.169.254",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "0.0.0.0",
]


async def test_a_url_naming_a_private_address_is_refused_with_422(make_hooked: MakeHooked) -> None:
    hooked: Hooked = await make_hooked(**PRODUCTION_LIKE)
    answers = []
    for host in PRIVATE_HOSTS:
        url = f"http://{host}:{hooked.receiver.port}/hook"
        response = await hooked.admin.post(
            "/api/webhooks", json={"url": url, "events": ["email.sent"]}
        )
        answers.append((host, response.status_code, response.json()["error"]["message"]))

    assert [(host, code) for host, code, _ in answers] == [(h, 422) for h in PRIVATE_HOSTS]
    assert all("private" in message for _, _, message in answers)


async def test_a_host_resolving_to_loopback_is_never_contacted(make_hooked: MakeHooked) -> None:
    hooked: Hooked = await make_hooked(**PRODUCTION_LIKE)
    created = await hooked.admin.post(
        "/api/webhooks",
        json={"url": hooked.receiver.url(host="localhost"), "events": ["email.sent"]},
    )
    endpoint_id = created.json()["id"]

    await hooked.admin.post(f"/api/webhooks/{endpoint_id}/test")

    async def refused() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (
            await hooked.admin.get(f"/api/webhooks/{endpoint_id}/deliveries")
        ).json()["items"]
        return items or None

    attempts = await eventually(refused, what="a refused attempt")
    assert created.status_code == 201
    assert attempts[0]["ok"] is False and attempts[0]["responseCode"] is None
    assert "private address" in attempts[0]["error"]
    assert hooked.receiver.received() == []


async def test_a_redirect_is_a_failure_and_is_not_followed(make_hooked: MakeHooked) -> None:
    hooked: Hooked = await make_hooked()
    endpoint = await hooked.endpoint(["email.sent"])
    hooked.receiver.answer(302)

    await hooked.admin.post(f"/api/webhooks/{endpoint['id']}/test")
    got = await hooked.wait_for(2)  # the 302, then the retry that succeeds
    await asyncio.sleep(0.2)

    assert [r.path for r in hooked.receiver.received()] == ["/hook", "/hook"]
    assert [r.status for r in got] == [302, 200]
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
