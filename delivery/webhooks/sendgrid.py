"""SendGrid's signed Event Webhook: verify the ECDSA signature, then normalize events."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from delivery.webhooks.events import MalformedWebhook, WebhookError, dedupe_key
from schemas.delivery import DeliveryEvent, DeliveryStatus

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# SendGrid documents no window; five minutes is the usual replay bound for signed webhooks.
DEFAULT_TOLERANCE_SECONDS = 300.0
PROVIDER = "sendgrid"

S = DeliveryStatus
_STATUS: dict[str, DeliveryStatus | None] = {
    "processed": None,  # accepted by SendGrid: we already marked it sent
    "delivered": S.DELIVERED,
    "deferred": S.DEFERRED,
    "bounce": S.BOUNCED,
    "dropped": S.DROPPED,
    "spamreport": S.SPAM_REPORT,
    "open": S.OPENED,
    "click": S.CLICKED,
    "unsubscribe": None,
    "group_unsubscribe": None,
    "group_resubscribe": None,
}
_ALWAYS_SUPPRESS = frozenset({"spamreport", "unsubscribe", "group_unsubscribe"})


class SendGridSignatureVerifier:
    def __init__(
        self,
        public_key_b64: str,
        *,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``public_key_b64`` is the key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
        key = load_der_public_key(base64.b64decode(public_key_b64))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the SendGrid verification key must be an EC public key")
        self._key = key
        self._tolerance = tolerance_seconds
        self._clock = clock

    def verify(self, *, signature: str | None, timestamp: str | None, body: bytes) -> None:
        """Raises WebhookError unless ``body`` is signed by SendGrid within the tolerance."""
        if not signature or not timestamp:
            raise WebhookError("missing SendGrid signature headers")
        try:
            sent_at = int(timestamp)
            der = base64.b64decode(signature, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise WebhookError("malformed SendGrid signature headers") from exc
        # Future timestamps are bounded too, or a stolen request could be replayed for long.
        if abs(self._clock() - sent_at) > self._tolerance:
            raise WebhookError("SendGrid webhook timestamp outside the tolerance")
        try:
            self._key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise WebhookError("invalid SendGrid webhook signature") from exc

    def verify_headers(self, headers: Mapping[str, str], body: bytes) -> None:
        """Same as ``verify``, reading the headers from any mapping, case-insensitively."""
        lowered = {k.lower(): v for k, v in headers.items()}
        self.verify(
            signature=lowered.get(SIGNATURE_HEADER.lower()),
            timestamp=lowered.get(TIMESTAMP_HEADER.lower()),
            body=body,
        )


class _Event(msgspec.Struct):
    event: str
    email: str
    timestamp: float
    sg_message_id: str | None = None
    email_id: str | None = None  # our custom_args, flattened into the event by SendGrid
    type: str | None = None  # bounce: "bounce" (hard) or "blocked"
    reason: str | None = None
    response: str | None = None
    status: str | None = None
    url: str | None = None


_decoder = msgspec.json.Decoder(list[_Event])


def parse_events(body: bytes) -> list[DeliveryEvent]:
    """Normalize a verified webhook body; unknown event types are skipped."""
    try:
        raw_events = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedWebhook(f"SendGrid webhook body: {exc}") from exc
    return [_normalize(e) for e in raw_events if e.event in _STATUS]


def _normalize(raw: _Event) -> DeliveryEvent:
    bounce_type = (raw.type or "bounce") if raw.event == "bounce" else None
    # A "blocked" bounce is the receiver refusing for now (reputation, content), not a
    # dead address; suppressing on it would silence recipients who are still reachable.
    suppress = raw.event in _ALWAYS_SUPPRESS or bounce_type == "bounce"
    message_id = raw.sg_message_id.split(".", 1)[0] if raw.sg_message_id else None
    detail = " ".join(p for p in (raw.status, raw.reason or raw.response, raw.url) if p) or None
    return DeliveryEvent(
        provider=PROVIDER,
        kind=raw.event,
        status=_STATUS[raw.event],
        recipient=raw.email,
        occurred_at=raw.timestamp,
        email_id=raw.email_id,
        provider_message_id=message_id,
        detail=detail,
        suppress=suppress,
        bounce_type=bounce_type,
        dedupe_key=dedupe_key(
            PROVIDER, raw.email_id or message_id, raw.event, raw.email, raw.timestamp
        ),
    )
