"""Provider webhooks in: verify first, then record events, advance statuses, suppress.

Verification always happens on the raw body before any parsing, and a request
that fails it changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from delivery.webhooks import (
    DeliveryEvent,
    SendGridSignatureVerifier,
    SnsVerifier,
    WebhookError,
    decode_message_json,
    parse_events,
    parse_ses_notification,
)
from delivery.webhooks.sns import DEFAULT_CERT_HOST_PATTERN
from storage.email import EmailStore

log = logging.getLogger("pitchey.email.webhooks")


class WebhookIntake:
    def __init__(
        self,
        store: EmailStore,
        *,
        sendgrid_public_key: str = "",
        sns_topic_arns: tuple[str, ...] = (),
        sns_cert_host_pattern: str = "",
        require_topic_allowlist: bool = False,
    ) -> None:
        self.store = store
        self._sendgrid = (
            SendGridSignatureVerifier(sendgrid_public_key) if sendgrid_public_key else None
        )
        self._host_pattern = re.compile(sns_cert_host_pattern or DEFAULT_CERT_HOST_PATTERN)
        self._sns = SnsVerifier(
            allowed_topic_arns=sns_topic_arns,
            cert_host_pattern=sns_cert_host_pattern or DEFAULT_CERT_HOST_PATTERN,
        )
        # Production refuses SES webhooks until topics are listed: any AWS account can
        # create a topic and sign messages with AWS's own certificate.
        self._sns_open = bool(sns_topic_arns) or not require_topic_allowlist

    async def sendgrid(self, headers: Mapping[str, str], body: bytes) -> tuple[int, int]:
        """(events received, events applied). Raises WebhookError / MalformedWebhook."""
        if self._sendgrid is None:
            raise WebhookError("SENDGRID_WEBHOOK_PUBLIC_KEY is not configured")
        self._sendgrid.verify_headers(headers, body)
        return await self._apply(parse_events(body))

    async def ses(self, body: bytes) -> tuple[int, int]:
        if not self._sns_open:
            raise WebhookError("SES_SNS_TOPIC_ARNS is not configured")
        message = await self._sns.verify(body)
        if message.Type == "SubscriptionConfirmation":
            await self._confirm(message.SubscribeURL or "")
            return 0, 0
        if message.is_subscription:
            return 0, 0
        return await self._apply(parse_ses_notification(decode_message_json(message)))

    async def _confirm(self, url: str) -> None:
        parts = urlsplit(url)
        # The URL is signed, but only an SNS host may be called: never an arbitrary one.
        if parts.scheme != "https" or not self._host_pattern.fullmatch(parts.hostname or ""):
            raise WebhookError(f"SNS SubscribeURL not allowed: {url}")
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(url)
        if response.status_code != 200:
            raise WebhookError(f"SNS subscription confirmation failed: {response.status_code}")
        log.info("confirmed SNS subscription via %s", parts.hostname)

    async def _apply(self, events: list[DeliveryEvent]) -> tuple[int, int]:
        applied = 0
        for event in events:
            if await self.store.apply_event(event):
                applied += 1
        return len(events), applied
