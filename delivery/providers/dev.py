"""A provider for development: accepts every email and keeps the latest ones in memory."""

from __future__ import annotations

import logging
import uuid
from collections import deque

from delivery.providers.base import OutgoingEmail, SendResult

logger = logging.getLogger(__name__)

# Enough to inspect a dev session's recent mail without growing without bound.
DEFAULT_CAPACITY = 1000


class DevProvider:
    name = "dev"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.sent: deque[tuple[SendResult, OutgoingEmail]] = deque(maxlen=capacity)

    async def send(self, email: OutgoingEmail) -> SendResult:
        result = SendResult(self.name, f"dev-{uuid.uuid4()}")
        self.sent.append((result, email))
        logger.info(
            "dev email %s id=%s to=%s subject=%r",
            result.provider_message_id,
            email.id,
            ",".join(a.email for a in email.to),
            email.subject,
        )
        return result

    async def aclose(self) -> None:
        self.sent.clear()
