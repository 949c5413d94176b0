"""Shared pieces of the email tests: settings, webhook signing, polling, the server wrapper.

Kept out of conftest.py so that tests and fixtures share one copy (one signing key)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import TEST_ENV
from tests.servers import ServerProcess
from tests.standins.sendgrid import SendGridStandin

SENDGRID_KEY = "SG.email-tests"
FROM = "noreply@pitchey.test"
WEBHOOK_KEY = ec.generate_private_key(ec.SECP256R1())
WEBHOOK_PUBLIC_B64 = base64.b64encode(
    WEBHOOK_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()

# Small batches and timeouts keep every test fast; rate limits are tested on their own.
EMAIL_ENV = {
    **TEST_ENV,
    "EMAIL_BATCH_TIMEOUT": "0.05",
    "EMAIL_BATCH_SIZE": "20",
    "EMAIL_RETRY_BASE": "0.05",
    "EMAIL_RETRY_CAP": "0.5",
    "EMAIL_RATE_LIMIT_PER_MINUTE": "0",
    "EMAIL_RATE_LIMIT_PER_HOUR": "0",
    "SENDGRID_FROM_EMAIL": FROM,
    "SENDGRID_WEBHOOK_PUBLIC_KEY": WEBHOOK_PUBLIC_B64,
}

T = TypeVar("T")


def sign_webhook(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = WEBHOOK_KEY.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class EmailServer:
    """Our server plus a service-role client and helpers for the email API."""

    proc: ServerProcess
    http: httpx.AsyncClient

    async def send(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.http.post("/api/email/send", json=body, headers=headers)

    async def accept(self, body: dict[str, Any]) -> str:
        response = await self.send(body)
        assert response.status_code == 202, response.text
        email_id: str = response.json()["id"]
        return email_id

    async def status(self, email_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/email/{email_id}/status")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def wait_status(
        self, email_id: str, *statuses: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            found = await self.status(email_id)
            return found if found["status"] in statuses else None

        return await eventually(probe, timeout, f"{email_id} to be {statuses}")


def sendgrid_env(standin: SendGridStandin) -> dict[str, str]:
    return {"SENDGRID_API_KEY": SENDGRID_KEY, "SENDGRID_API_URL": standin.url}


def ses_env(moto_url: str) -> dict[str, str]:
    return {
        "AWS_SES_ACCESS_KEY": "testing",
        "AWS_SES_SECRET_KEY": "testing",
        "AWS_SES_ENDPOINT_URL": moto_url,
    }


ServerFactory = Callable[..., Awaitable[EmailServer]]


def delivered_ids(standin: SendGridStandin) -> list[str]:
    """Our email id of every message the stand-in accepted, repeats included."""
    return [m["custom_args"]["email_id"] for m in standin.messages()]
