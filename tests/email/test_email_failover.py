"""Provider failures end to end: SendGrid stand-in failing on command, SES on moto."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.email.support import (
    EmailServer,
    ServerFactory,
    delivered_ids,
    sendgrid_env,
    ses_env,
)
from tests.standins.sendgrid import Mode, SendGridStandin


def body(subject: str = "Hello") -> dict[str, str]:
    return {"to": f"ann-{uuid.uuid4().hex[:8]}@example.com", "subject": subject, "text": "Hi"}


async def both(
    make: ServerFactory, sendgrid: SendGridStandin, moto_url: str, **env: str
) -> EmailServer:
    # Two failures in a row open the circuit for one second: fast enough for a test.
    settings = {"EMAIL_BREAKER_THRESHOLD": "2", "EMAIL_BREAKER_COOLDOWN": "1", **env}
    return await make(**sendgrid_env(sendgrid), **ses_env(moto_url), **settings)


def sent_by_ses(moto_url: str, message_id: str) -> bool:
    data = httpx.get(f"{moto_url}/moto-api/data.json").json()
    # An email with headers (List-Unsubscribe, for one) goes to SES as raw MIME.
    sent = [*data["ses"].get("Message", []), *data["ses"].get("RawMessage", [])]
    return any(m["id"] == message_id for m in sent)


async def test_sendgrid_500s_fail_over_to_ses_and_come_back_after_it_heals(
    make_email_server: ServerFactory, sendgrid: SendGridStandin, moto_url: str
) -> None:
    server = await both(make_email_server, sendgrid, moto_url)
    sendgrid.set_mode(Mode(fail_status=500))

    first = await server.accept(body("during the outage"))
    status = await server.wait_status(first, "sent")

    assert status["provider"] == "ses"
    assert sent_by_ses(moto_url, status["providerMessageId"])
    assert [e["type"] for e in status["events"]].count("retry") == 2

    sendgrid.set_mode(Mode())
    time.sleep(1.1)  # the circuit's cool-down: the next email probes SendGrid
    second = await server.accept(body("after the outage"))
    healed = await server.wait_status(second, "sent")

    assert healed["provider"] == "sendgrid"
    assert delivered_ids(sendgrid) == [second]
    # Provider outcomes are counted by provider and outcome for /metrics.
    text = (await server.http.get("/metrics")).text
    assert 'pitchey_email_provider_outcomes_total{outcome="retry",provider="sendgrid"} 2.0' in text
    assert 'pitchey_email_provider_outcomes_total{outcome="sent",provider="ses"} 1.0' in text
    assert 'pitchey_email_provider_outcomes_total{outcome="sent",provider="sendgrid"} 1.0' in text


async def test_a_429_waits_for_retry_after_on_the_same_provider(
    make_email_server: ServerFactory, sendgrid: SendGridStandin, moto_url: str
) -> None:
    # The router caps any wait at EMAIL_RETRY_CAP; raise it above the Retry-After.
    server = await both(make_email_server, sendgrid, moto_url, EMAIL_RETRY_CAP="5")
    sendgrid.set_mode(Mode(fail_status=429, retry_after=1, count=1))

    started = time.time()
    email_id = await server.accept(body())
    status = await server.wait_status(email_id, "sent")

    assert status["provider"] == "sendgrid"
    [message] = sendgrid.messages()
    assert message["received_at"] - started >= 1.0
    retry = next(e for e in status["events"] if e["type"] == "retry")
    assert "rate_limited" in retry["detail"]


async def test_an_ambiguous_timeout_is_retried_on_the_same_provider(
    make_email_server: ServerFactory, sendgrid: SendGridStandin, moto_url: str
) -> None:
    server = await both(make_email_server, sendgrid, moto_url, SENDGRID_TIMEOUT="0.5")
    sendgrid.set_mode(Mode(hang=True, count=1))

    email_id = await server.accept(body())
    status = await server.wait_status(email_id, "sent")

    assert status["provider"] == "sendgrid"
    assert delivered_ids(sendgrid) == [email_id]
    ambiguous = next(e for e in status["events"] if e["type"] == "ambiguous_timeout")
    assert "duplicate is possible" in ambiguous["detail"]


async def test_a_rejected_email_fails_at_once_with_the_providers_message(
    make_email_server: ServerFactory, sendgrid: SendGridStandin, moto_url: str
) -> None:
    server = await both(make_email_server, sendgrid, moto_url)
    sendgrid.set_mode(Mode(fail_status=400))

    email_id = await server.accept(body())
    status = await server.wait_status(email_id, "failed")

    assert status["attempts"] == 1
    assert "rejected by sendgrid" in status["lastError"]


async def test_retryable_errors_end_as_failed_after_max_attempts(
    make_email_server: ServerFactory, sendgrid: SendGridStandin
) -> None:
    server = await make_email_server(EMAIL_MAX_ATTEMPTS="3", **sendgrid_env(sendgrid))
    sendgrid.set_mode(Mode(fail_status=503))

    email_id = await server.accept(body())
    status = await server.wait_status(email_id, "failed")

    assert status["attempts"] == 3
    assert "gave up after 3 attempts" in status["lastError"]


async def test_a_bad_sendgrid_key_fails_over_to_ses(
    make_email_server: ServerFactory, sendgrid: SendGridStandin, moto_url: str
) -> None:
    server = await make_email_server(
        SENDGRID_API_KEY="SG.wrong", SENDGRID_API_URL=sendgrid.url, **ses_env(moto_url)
    )

    email_id = await server.accept(body())
    status = await server.wait_status(email_id, "sent")

    assert status["provider"] == "ses"
    assert sendgrid.messages() == []
