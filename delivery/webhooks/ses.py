"""Normalizing SES event notifications (the JSON inside a verified SNS Message).

Handles both identity notifications (``notificationType``) and configuration-set
event publishing (``eventType``). Events are matched by ``mail.messageId``, the id
SES returned at send, and by our ``email_id`` tag or header when SES includes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from delivery.providers.mime import EMAIL_ID_HEADER
from delivery.webhooks.events import MalformedWebhook, dedupe_key
from schemas.delivery import DeliveryEvent, DeliveryStatus

PROVIDER = "ses"
S = DeliveryStatus


def parse_ses_notification(payload: dict[str, Any]) -> list[DeliveryEvent]:
    """One event per affected recipient; unknown types give no events."""
    kind = payload.get("eventType") or payload.get("notificationType")
    mail = payload.get("mail")
    if not isinstance(kind, str) or not isinstance(mail, dict) or "messageId" not in mail:
        raise MalformedWebhook("SES notification without type or mail.messageId")
    try:
        return list(_events(kind, payload, mail))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedWebhook(f"SES {kind} notification: {exc!r}") from exc


def _events(kind: str, payload: dict[str, Any], mail: dict[str, Any]) -> Iterable[DeliveryEvent]:
    if kind == "Bounce":
        bounce = payload["bounce"]
        # Only Permanent bounces mean the address is dead; Transient ones (mailbox full,
        # message too large) end this email but must not silence the recipient.
        hard = bounce.get("bounceType") == "Permanent"
        for r in bounce["bouncedRecipients"]:
            yield _event(
                kind,
                S.BOUNCED,
                r["emailAddress"],
                bounce["timestamp"],
                mail,
                detail=r.get("diagnosticCode"),
                suppress=hard,
                bounce_type=bounce.get("bounceType"),
            )
    elif kind == "Complaint":
        complaint = payload["complaint"]
        for r in complaint["complainedRecipients"]:
            yield _event(
                kind,
                S.SPAM_REPORT,
                r["emailAddress"],
                complaint["timestamp"],
                mail,
                detail=complaint.get("complaintFeedbackType"),
                suppress=True,
            )
    elif kind == "Delivery":
        delivery = payload["delivery"]
        for address in delivery["recipients"]:
            yield _event(
                kind,
                S.DELIVERED,
                address,
                delivery["timestamp"],
                mail,
                detail=delivery.get("smtpResponse"),
            )
    elif kind == "DeliveryDelay":
        delay = payload["deliveryDelay"]
        for r in delay["delayedRecipients"]:
            yield _event(
                kind,
                S.DEFERRED,
                r["emailAddress"],
                delay["timestamp"],
                mail,
                detail=r.get("diagnosticCode") or delay.get("delayType"),
            )
    elif kind in _PER_MESSAGE:
        status, key = _PER_MESSAGE[kind]
        section = payload.get(key) or {}
        when = section.get("timestamp") or mail["timestamp"]
        detail = section.get("reason") or section.get("link")
        for address in mail.get("destination", []):
            yield _event(kind, status, address, when, mail, detail=detail)


# Event-publishing types that name no recipients; they apply to every destination.
_PER_MESSAGE: dict[str, tuple[DeliveryStatus, str]] = {
    "Send": (S.SENT, "send"),
    "Reject": (S.DROPPED, "reject"),
    "Open": (S.OPENED, "open"),
    "Click": (S.CLICKED, "click"),
}


def _event(
    kind: str,
    status: DeliveryStatus,
    recipient: str,
    timestamp: str,
    mail: dict[str, Any],
    *,
    detail: str | None = None,
    suppress: bool = False,
    bounce_type: str | None = None,
) -> DeliveryEvent:
    occurred_at = datetime.fromisoformat(timestamp).timestamp()
    message_id = str(mail["messageId"])
    return DeliveryEvent(
        provider=PROVIDER,
        kind=kind,
        status=status,
        recipient=recipient,
        occurred_at=occurred_at,
        email_id=_email_id(mail),
        provider_message_id=message_id,
        detail=detail,
        suppress=suppress,
        bounce_type=bounce_type,
        dedupe_key=dedupe_key(PROVIDER, message_id, kind, recipient, occurred_at),
    )


def _email_id(mail: dict[str, Any]) -> str | None:
    tags = mail.get("tags") or {}
    if isinstance(tags.get("email_id"), list) and tags["email_id"]:
        return str(tags["email_id"][0])
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == EMAIL_ID_HEADER.lower():
            return str(header.get("value"))
    return None
