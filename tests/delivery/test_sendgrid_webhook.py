"""SendGrid signed Event Webhook: verification with a key made here, then parsing."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from delivery.webhooks import (
    DeliveryStatus,
    MalformedWebhook,
    SendGridSignatureVerifier,
    WebhookError,
    parse_events,
)

NOW = 1_700_000_000
PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY_B64 = base64.b64encode(
    PRIVATE_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def sign(body: bytes, timestamp: str, key: ec.EllipticCurvePrivateKey = PRIVATE_KEY) -> str:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def event(kind: str, **fields: object) -> dict[str, object]:
    return {
        "event": kind,
        "email": "ann@example.com",
        "timestamp": NOW,
        "sg_message_id": "abc123.filterdrecv-1-2",
        "sg_event_id": "random",
        "email_id": "email-1",
        **fields,
    }


def body_of(*events: dict[str, object]) -> bytes:
    return json.dumps(list(events)).encode()


@pytest.fixture
def verifier() -> SendGridSignatureVerifier:
    return SendGridSignatureVerifier(PUBLIC_KEY_B64, clock=lambda: NOW + 10)


def test_a_correctly_signed_body_verifies(verifier: SendGridSignatureVerifier) -> None:
    body = body_of(event("delivered"))

    verifier.verify_headers(
        {
            "x-twilio-email-event-webhook-signature": sign(body, str(NOW)),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(NOW),
        },
        body,
    )


def test_a_modified_body_is_refused(verifier: SendGridSignatureVerifier) -> None:
    body = body_of(event("delivered"))
    signature = sign(body, str(NOW))

    with pytest.raises(WebhookError, match="invalid"):
        verifier.verify(signature=signature, timestamp=str(NOW), body=body + b" ")


def test_a_signature_from_another_key_is_refused(verifier: SendGridSignatureVerifier) -> None:
    body = body_of(event("delivered"))
    other = ec.generate_private_key(ec.SECP256R1())

    with pytest.raises(WebhookError):
        verifier.verify(signature=sign(body, str(NOW), other), timestamp=str(NOW), body=body)


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_the_tolerance_are_refused(skew: int) -> None:
    verifier = SendGridSignatureVerifier(PUBLIC_KEY_B64, clock=lambda: NOW)
    body = body_of(event("delivered"))
    timestamp = str(NOW + skew)

    with pytest.raises(WebhookError, match="tolerance"):
        verifier.verify(signature=sign(body, timestamp), timestamp=timestamp, body=body)


def test_missing_headers_are_refused(verifier: SendGridSignatureVerifier) -> None:
    with pytest.raises(WebhookError, match="missing"):
        verifier.verify_headers({}, b"[]")


def test_events_carry_our_email_id_and_the_send_message_id() -> None:
    [parsed] = parse_events(body_of(event("delivered")))

    assert parsed.email_id == "email-1"
    assert parsed.provider_message_id == "abc123"
    assert parsed.status is DeliveryStatus.DELIVERED
    assert parsed.recipient == "ann@example.com"
    assert parsed.occurred_at == NOW
    assert not parsed.suppress


@pytest.mark.parametrize(
    ("kind", "fields", "status", "suppress"),
    [
        ("processed", {}, None, False),
        ("deferred", {"response": "try later"}, DeliveryStatus.DEFERRED, False),
        ("bounce", {"type": "bounce", "reason": "550 no such user"}, DeliveryStatus.BOUNCED, True),
        ("bounce", {"type": "blocked", "reason": "blocked"}, DeliveryStatus.BOUNCED, False),
        ("dropped", {"reason": "Bounced Address"}, DeliveryStatus.DROPPED, False),
        ("spamreport", {}, DeliveryStatus.SPAM_REPORT, True),
        ("open", {}, DeliveryStatus.OPENED, False),
        ("click", {"url": "https://p.test"}, DeliveryStatus.CLICKED, False),
        ("unsubscribe", {}, None, True),
        ("group_unsubscribe", {}, None, True),
    ],
)
def test_each_event_type_maps_to_a_status_and_suppression(
    kind: str, fields: dict[str, object], status: DeliveryStatus | None, suppress: bool
) -> None:
    [parsed] = parse_events(body_of(event(kind, **fields)))

    assert (parsed.status, parsed.suppress) == (status, suppress)


def test_bounce_reason_is_kept_as_detail() -> None:
    [parsed] = parse_events(body_of(event("bounce", type="bounce", reason="550 no such user")))

    assert parsed.detail == "550 no such user"
    assert parsed.bounce_type == "bounce"


def test_dedupe_key_ignores_sg_event_id_so_retries_collapse() -> None:
    first = parse_events(body_of(event("open", sg_event_id="one")))[0]
    retried = parse_events(body_of(event("open", sg_event_id="two")))[0]
    later = parse_events(body_of(event("open", timestamp=NOW + 60)))[0]

    assert first.dedupe_key == retried.dedupe_key
    assert first.dedupe_key != later.dedupe_key


def test_unknown_event_types_are_skipped() -> None:
    assert parse_events(body_of(event("something_new"), event("delivered")))[0].kind == "delivered"


def test_a_body_that_is_not_an_event_array_is_malformed() -> None:
    with pytest.raises(MalformedWebhook):
        parse_events(b'{"event": "delivered"}')
