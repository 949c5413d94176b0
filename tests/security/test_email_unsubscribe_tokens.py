"""One-click unsubscribe tokens cannot be forged or altered (a 403, nothing changes)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from delivery.unsubscribe import Target, Unsubscribe
from tests.email.support import EMAIL_ENV, SENDGRID_KEY, EmailServer, sendgrid_env
from tests.servers import ServerProcess
from tests.standins.sendgrid import SendGridStandin


@pytest.fixture(scope="module")
async def mail(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmailServer]:
    with SendGridStandin(api_key=SENDGRID_KEY) as standin:
        env = {**EMAIL_ENV, **sendgrid_env(standin)}
        proc = ServerProcess(tmp_path_factory.mktemp("unsub"), env)
        await asyncio.to_thread(proc.start)
        async with proc.client("mailer", role="service") as http:
            yield EmailServer(proc, http)
        await asyncio.to_thread(proc.stop)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _post(mail: EmailServer, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=mail.proc.url) as anonymous:
        return await anonymous.post("/api/email/unsubscribe", params={"token": token})


async def test_a_token_signed_with_another_key_is_refused(mail: EmailServer) -> None:
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    forged = Unsubscribe("not-the-servers-secret", "https://x").token(Target(e=victim))

    response = await _post(mail, forged)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    later = await mail.accept({"to": victim, "subject": "Still here", "text": "Hi"})
    assert (await mail.wait_status(later, "sent"))["status"] == "sent"


async def test_an_unsigned_or_altered_token_is_refused(mail: EmailServer) -> None:
    payload = _b64(json.dumps({"u": "someone", "c": "system"}).encode())
    for token in (payload, f"{payload}.", f"{payload}.AAAA", "x.y.z", "%%%.%%%"):
        response = await _post(mail, token)
        assert response.status_code == 403, (token, response.text)


async def test_a_missing_token_is_a_422(mail: EmailServer) -> None:
    async with httpx.AsyncClient(base_url=mail.proc.url) as anonymous:
        response = await anonymous.post("/api/email/unsubscribe")

    assert response.status_code == 422
