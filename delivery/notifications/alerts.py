"""Operational alerts to the people who run the platform, as notifications.

There is no admin directory: an admin is whoever holds a token with role `admin`. The
users named in ADMIN_USER_IDS receive these like any notification (in-app, email, push,
by their preferences), with priority critical so quiet hours never hold them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from .service import NotificationService, Outgoing

log = logging.getLogger("pitchey.notifications.alerts")

WEBHOOK_DISABLED = "webhook_disabled"


class AdminAlerts:
    def __init__(self, service: NotificationService, admin_ids: Sequence[str]) -> None:
        self.service = service
        self.admin_ids = tuple(admin_ids)

    async def endpoint_disabled(self, endpoint_id: str, url: str, failing_days: float) -> None:
        if not self.admin_ids:
            return
        # The host only: a path or query may carry a receiver's token, and this goes by email.
        host = urlsplit(url).hostname or "?"
        message = (
            f"The webhook endpoint {endpoint_id} ({host}) failed every delivery for "
            f"{failing_days:g} days and was disabled; its events wait. "
            f'Enable it again with PATCH /api/webhooks/{endpoint_id} {{"enabled": true}}.'
        )
        await self.service.notify(
            [
                Outgoing(
                    user_id=admin,
                    type=WEBHOOK_DISABLED,
                    title="Webhook endpoint disabled",
                    message=message,
                    data={"endpointId": endpoint_id, "host": host},
                    priority="critical",
                )
                for admin in self.admin_ids
            ]
        )
