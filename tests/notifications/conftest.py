"""Real servers for the notification tests, with the SendGrid stand-in as the email provider.

Batch timeouts and the unread-message delay are tiny so nothing waits for the seed's 30 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ServerProcess, uid
from tests.standins.sendgrid import SendGridStandin

SENDGRID_KEY = "notifications-standin-key"
UNREAD_DELAY = 1.0

NOTIFY_ENV = {
    "ENVIRONMENT": "test",
    "WS_IDLE_TIMEOUT": "0",
    "MESSAGE_RATE_LIMIT_PER_MINUTE": "100000",
    "NOTIFICATION_RATE_LIMIT_PER_MINUTE": "100000",
    "NOTIFICATION_BATCH_TIMEOUT": "0.05",
    "EMAIL_BATCH_TIMEOUT": "0.05",
    "UNREAD_EMAIL_DELAY": str(UNREAD_DELAY),
    "EMAIL_RATE_LIMIT_PER_MINUTE": "0",
    "EMAIL_RATE_LIMIT_PER_HOUR": "0",
}


@pytest.fixture(scope="session")
def standin() -> Iterator[SendGridStandin]:
    with SendGridStandin(api_key=SENDGRID_KEY) as running:
        yield running


def _env(standin: SendGridStandin, **extra: str) -> dict[str, str]:
    return {
        **NOTIFY_ENV,
        "SENDGRID_API_KEY": SENDGRID_KEY,
        "SENDGRID_API_URL": standin.url,
        **extra,
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, standin: SendGridStandin
) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("notify"), _env(standin))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(tmp_path: Path, standin: SendGridStandin) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def make(data_dir: Path | None = None, secret: str | None = None, **env: str) -> ServerProcess:
        proc = ServerProcess(data_dir or tmp_path / f"s{len(started)}", _env(standin, **env))
        if secret:
            proc.secret = secret
        proc.start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


async def person(server: ServerProcess, prefix: str = "u", email: bool = True) -> str:
    """A fresh user in the directory, with an address at example.com unless `email` is False."""
    user_id = uid(prefix)
    body: dict[str, Any] = {"name": user_id.title(), "timezone": "UTC"}
    if email:
        body["email"] = f"{user_id}@example.com"
    async with server.client("platform", "service") as http:
        response = await http.put(f"/api/users/{user_id}", json=body)
        assert response.status_code == 200, response.text
    return user_id


async def request_nda(
    server: ServerProcess,
    owner: str,
    requester: str = "r",
    title: str = "Night Train",
    message: str | None = None,
) -> list[str]:
    """The platform's NDA request for `owner`'s pitch: 202 expected; the notification ids."""
    body: dict[str, Any] = {
        "pitchId": "p-1",
        "pitchTitle": title,
        "requesterId": requester,
        "ownerId": owner,
    }
    if message is not None:
        body["message"] = message
    async with server.client("platform", "service") as http:
        response = await http.post("/api/notifications/nda/request", json=body)
    assert response.status_code == 202, response.text
    ids: list[str] = response.json()["ids"]
    return ids


def emails_to(standin: SendGridStandin, address: str) -> list[dict[str, Any]]:
    return [m for m in standin.messages() if address in json.dumps(m.get("personalizations"))]


async def wait_for_emails(
    standin: SendGridStandin, address: str, count: int = 1, timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = emails_to(standin, address)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def wait_status(
    http: httpx.AsyncClient, notification_id: str, status: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll the caller's inbox until the notification's email status is `status`."""
    deadline = time.monotonic() + timeout
    while True:
        items = (await http.get("/api/notifications", params={"limit": 100})).json()["items"]
        found = next(i for i in items if i["id"] == notification_id)
        if found["emailStatus"] == status or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def subject(message: dict[str, Any]) -> str:
    value = message.get("subject") or message["personalizations"][0].get("subject", "")
    return str(value)
