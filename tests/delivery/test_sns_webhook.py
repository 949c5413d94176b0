"""SNS signature verification with our own CA-less certificate, and SES event parsing."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from delivery.webhooks import (
    DeliveryStatus,
    SnsVerifier,
    WebhookError,
    decode_message_json,
    parse_ses_notification,
)
from delivery.webhooks.sns import SnsMessage, string_to_sign

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed_pem(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


CERT_PEM = self_signed_pem(KEY)


class FakeFetcher:
    def __init__(self) -> None:
        self.urls: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return CERT_PEM


def signed(fields: dict[str, Any], version: str = "1", key: rsa.RSAPrivateKey = KEY) -> bytes:
    message: dict[str, Any] = {
        "MessageId": "m-1",
        "TopicArn": TOPIC,
        "Timestamp": "2026-01-27T14:59:38.237Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "Signature": "",
        **fields,
    }
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    to_sign = string_to_sign(SnsMessage(**message))
    message["Signature"] = base64.b64encode(key.sign(to_sign, padding.PKCS1v15(), digest)).decode()
    return json.dumps(message).encode()


def notification(payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Type": "Notification", "Message": json.dumps(payload), **extra}


@pytest.fixture
def fetcher() -> FakeFetcher:
    return FakeFetcher()


@pytest.fixture
def verifier(fetcher: FakeFetcher) -> SnsVerifier:
    return SnsVerifier(allowed_topic_arns=[TOPIC], fetch_certificate=fetcher)


@pytest.mark.parametrize("version", ["1", "2"])
async def test_signed_notification_verifies(verifier: SnsVerifier, version: str) -> None:
    body = signed(notification({"hello": 1}, Subject="Amazon SES Email Event"), version)

    message = await verifier.verify(body)

    assert decode_message_json(message) == {"hello": 1}


async def test_subscription_confirmation_returns_its_subscribe_url(verifier: SnsVerifier) -> None:
    body = signed(
        {
            "Type": "SubscriptionConfirmation",
            "Message": "You have chosen to subscribe",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "Token": "tok",
        }
    )

    message = await verifier.verify(body)

    assert message.is_subscription
    assert message.SubscribeURL == "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"


async def test_tampered_message_is_refused(verifier: SnsVerifier) -> None:
    body = signed(notification({"hello": 1})).replace(b"hello", b"jello")

    with pytest.raises(WebhookError, match="invalid SNS signature"):
        await verifier.verify(body)


async def test_signature_by_another_key_is_refused(verifier: SnsVerifier) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(WebhookError):
        await verifier.verify(signed(notification({}), key=other))


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.test/cert.pem",
        "https://evil.test/sns.us-east-1.amazonaws.com.pem",
    ],
)
async def test_certificate_urls_outside_aws_sns_are_never_fetched(
    verifier: SnsVerifier, fetcher: FakeFetcher, url: str
) -> None:
    body = signed(notification({}, SigningCertURL=url))

    with pytest.raises(WebhookError, match="certificate URL"):
        await verifier.verify(body)
    assert fetcher.urls == []


async def test_topics_outside_the_allowlist_are_refused(verifier: SnsVerifier) -> None:
    body = signed(notification({}, TopicArn="arn:aws:sns:us-east-1:999:other"))

    with pytest.raises(WebhookError, match="topic"):
        await verifier.verify(body)


def mail(**extra: Any) -> dict[str, Any]:
    return {
        "messageId": "ses-123",
        "timestamp": "2026-01-27T14:58:00.000Z",
        "destination": ["ann@example.com"],
        **extra,
    }


def test_permanent_bounce_suppresses_the_address() -> None:
    payload = {
        "notificationType": "Bounce",
        "mail": mail(),
        "bounce": {
            "bounceType": "Permanent",
            "timestamp": "2026-01-27T14:59:38.237Z",
            "bouncedRecipients": [{"emailAddress": "ann@example.com", "diagnosticCode": "550"}],
        },
    }

    [event] = parse_ses_notification(payload)

    assert event.status is DeliveryStatus.BOUNCED
    assert event.suppress
    assert event.provider_message_id == "ses-123"
    assert event.detail == "550"


def test_transient_bounce_does_not_suppress() -> None:
    payload = {
        "eventType": "Bounce",
        "mail": mail(),
        "bounce": {
            "bounceType": "Transient",
            "timestamp": "2026-01-27T14:59:38.237Z",
            "bouncedRecipients": [{"emailAddress": "ann@example.com"}],
        },
    }

    [event] = parse_ses_notification(payload)

    assert not event.suppress


def test_complaint_suppresses_every_complaining_recipient() -> None:
    payload = {
        "notificationType": "Complaint",
        "mail": mail(),
        "complaint": {
            "timestamp": "2026-01-27T15:00:00.000Z",
            "complainedRecipients": [{"emailAddress": "a@x.test"}, {"emailAddress": "b@x.test"}],
        },
    }

    events = parse_ses_notification(payload)

    assert [(e.recipient, e.status, e.suppress) for e in events] == [
        ("a@x.test", DeliveryStatus.SPAM_REPORT, True),
        ("b@x.test", DeliveryStatus.SPAM_REPORT, True),
    ]


def test_delivery_carries_our_email_id_from_the_tag() -> None:
    payload = {
        "eventType": "Delivery",
        "mail": mail(tags={"email_id": ["email-9"]}),
        "delivery": {
            "timestamp": "2026-01-27T15:00:00.000Z",
            "recipients": ["ann@example.com"],
            "smtpResponse": "250 ok",
        },
    }

    [event] = parse_ses_notification(payload)

    assert event.status is DeliveryStatus.DELIVERED
    assert event.email_id == "email-9"


def test_email_id_falls_back_to_our_header() -> None:
    headers = [{"name": "X-Pitchey-Email-Id", "value": "email-5"}]
    payload = {
        "notificationType": "Delivery",
        "mail": mail(headers=headers),
        "delivery": {"timestamp": "2026-01-27T15:00:00.000Z", "recipients": ["ann@example.com"]},
    }

    [event] = parse_ses_notification(payload)

    assert event.email_id == "email-5"
