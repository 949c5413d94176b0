"""Our server with webhooks out switched on fast, a receiver stand-in and SendGrid's (fixtures)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.email.support import EMAIL_ENV, SENDGRID_KEY, eventually, sendgrid_env
from tests.servers import ServerProcess
from tests.standins.sendgrid import SendGridStandin
from tests.standins.webhook_receiver import Received, WebhookReceiver

# Fast retries so "500 twice then 200" takes well under a second; loopback allowed.
WEBHOOK_ENV = {
    **EMAIL_ENV,
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "WEBHOOK_BATCH_TIMEOUT": "0.05",
    "WEBHOOK_RETRY_BASE": "0.1",
    "WEBHOOK_RETRY_CAP": "0.4",
}


@dataclass
class Hooked:
    """Our server, an admin client and the receiver the endpoints point at."""

    proc: ServerProcess
    admin: httpx.AsyncClient
    receiver: WebhookReceiver

    async def endpoint(self, events: list[str], **body: Any) -> dict[str, Any]:
        response = await self.admin.post(
            "/api/webhooks", json={"url": self.receiver.url(), "events": events, **body}
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def wait_for(
        self, count: int, kind: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        async def probe() -> list[Received] | None:
            got = [r for r in self.receiver.received() if kind is None or r.json()["type"] == kind]
            return got if len(got) >= count else None

        return await eventually(probe, timeout, f"{count} webhook(s) of {kind or 'any type'}")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[SendGridStandin]:
    with SendGridStandin(api_key=SENDGRID_KEY) as server:
        yield server


@pytest.fixture
async def make_hooked(
    make_server: Callable[..., ServerProcess],
    receiver: WebhookReceiver,
    sendgrid: SendGridStandin,
) -> AsyncIterator[Callable[..., Any]]:
    clients: list[httpx.AsyncClient] = []

    async def make(backend: str = "sqlite", **env: str) -> Hooked:
        settings = {**WEBHOOK_ENV, **sendgrid_env(sendgrid), **env}
        proc = await asyncio.to_thread(make_server, backend=backend, **settings)
        admin = proc.client("ops", role="admin")
        clients.append(admin)
        return Hooked(proc, admin, receiver)

    yield make
    for client in clients:
        await client.aclose()
