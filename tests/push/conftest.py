"""Our server with web push on (fast batches and retries), and the push service stand-in.

The VAPID key pair is made here with `cryptography`, not by the code under test; the
stand-in checks every push against its public key, as a browser's push service would.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, conversation, uid
from tests.services import create_pg_database, drop_pg_database
from tests.standins.push_service import Browser, Push, PushServiceStandin


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_PUBLIC = _b64url(
    _KEY.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
)
VAPID_PRIVATE = _b64url(_KEY.private_numbers().private_value.to_bytes(32, "big"))
COALESCE = 1.5

PUSH_ENV = {
    **TEST_ENV,
    "VAPID_PUBLIC_KEY": VAPID_PUBLIC,
    "VAPID_PRIVATE_KEY": VAPID_PRIVATE,
    "VAPID_SUBJECT": "mailto:ops@pitchey.test",
    "PUSH_ALLOW_PRIVATE": "true",
    "PUSH_BATCH_TIMEOUT": "0.05",
    "PUSH_RETRY_BASE": "0.1",
    "PUSH_UNREAD_COALESCE": str(COALESCE),
    "NOTIFICATION_BATCH_TIMEOUT": "0.05",
    "NOTIFICATION_RATE_LIMIT_PER_MINUTE": "100000",
    "EMAIL_BATCH_TIMEOUT": "0.05",
    "UNREAD_EMAIL_DELAY": "600",
}

T = TypeVar("T")


@pytest.fixture(scope="module")
def pushsvc() -> Iterator[PushServiceStandin]:
    with PushServiceStandin(VAPID_PUBLIC) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[ServerProcess]:
    env = dict(PUSH_ENV)
    database = create_pg_database() if backend.startswith("postgres") else None
    if database is not None:
        env["DATABASE_URL"] = database
    proc = ServerProcess(tmp_path_factory.mktemp(f"push-{backend}"), env)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
        if database is not None:
            drop_pg_database(database)


@pytest.fixture
def make_push_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def make(data_dir: Path | None = None, secret: str | None = None, **env: str) -> ServerProcess:
        proc = ServerProcess(data_dir or tmp_path / f"s{len(started)}", {**PUSH_ENV, **env})
        if secret is not None:
            proc.secret = secret  # tokens valid on every node of a test cluster
        started.append(proc)
        proc.start()
        return proc

    yield make
    for proc in started:
        proc.stop()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def pushes_to(
    pushsvc: PushServiceStandin, browser: Browser, count: int = 1, timeout: float = 10.0
) -> list[Push]:
    async def probe() -> list[Push] | None:
        got = pushsvc.received(browser)
        return got if len(got) >= count else None

    return await eventually(probe, timeout, f"{count} push(es)")


async def settled_pushes(
    pushsvc: PushServiceStandin, browser: Browser, count: int = 1, settle: float = 0.3
) -> list[Push]:
    """Every push to the browser once `count` have come and `settle` seconds more have passed:
    time for one that should not come to show."""
    await pushes_to(pushsvc, browser, count)
    await asyncio.sleep(settle)
    return pushsvc.received(browser)


async def subscribed(
    server: ServerProcess, pushsvc: PushServiceStandin, user_id: str | None = None
) -> tuple[str, Browser]:
    """A user (named, in the directory) with one browser subscribed to push."""
    user_id = user_id or uid("p")
    async with server.client("platform", "service") as http:
        response = await http.put(f"/api/users/{user_id}", json={"name": user_id.title()})
        assert response.status_code == 200, response.text
    browser = pushsvc.browser()
    async with server.client(user_id) as http:
        response = await http.post("/api/push/subscriptions", json=browser.subscription())
        assert response.status_code == 201, response.text
    return user_id, browser


@dataclass(frozen=True)
class Pair:
    """alice writes to bob: both named in the directory and subscribed to push."""

    alice: str
    bob: str
    browser: Browser  # bob's, the one watched


@pytest.fixture
async def pair(server: ServerProcess, pushsvc: PushServiceStandin) -> Pair:
    bob, browser = await subscribed(server, pushsvc)
    alice, _ = await subscribed(server, pushsvc)
    return Pair(alice, bob, browser)


@pytest.fixture
async def direct(server: ServerProcess, pair: Pair) -> str:
    """The pair's direct conversation."""
    return await conversation(server, pair.alice, pair.bob)


async def notify(server: ServerProcess, user_id: str, **body: Any) -> str:
    payload = {"userId": user_id, "type": "system", "title": "Hello", "message": "World", **body}
    async with server.client("platform", "service") as http:
        response = await http.post("/api/notifications/send", json=payload)
        assert response.status_code == 202, response.text
        notification_id: str = response.json()["ids"][0]
        return notification_id


async def set_preferences(server: ServerProcess, user_id: str, body: dict[str, Any]) -> None:
    async with server.client(user_id) as http:
        response = await http.put("/api/notifications/preferences", json=body)
        assert response.status_code == 200, response.text


def client(server: ServerProcess, user_id: str) -> httpx.AsyncClient:
    return server.client(user_id)
