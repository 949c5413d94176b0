"""Web Push (RFC 8030 push, RFC 8291 encryption, RFC 8292 VAPID).

`vapid` signs, `encryption` encrypts for one browser, `payloads` shapes what the service
worker gets, `sender` drains the durable outbox (storage.push), `unread` queues
unread-message pushes, `service` is the REST API's logic. `Push` wires them; without
VAPID keys only the API runs (and answers that push is off), nothing is sent.
"""

from __future__ import annotations

import logging

from delivery.notifications.preferences import PreferenceService
from delivery.ports import ConversationPresence
from schemas.settings import Settings
from state.cache import Cache
from storage.db import Database
from storage.notifications import NotificationStore
from storage.push import PushStore
from storage.users import UserStore

from .sender import PushSender
from .service import PushService
from .unread import UnreadPushes
from .vapid import VapidConfig, VapidSigner

__all__ = ["Push", "PushService"]

log = logging.getLogger("pitchey.push")


def vapid_config(settings: Settings) -> VapidConfig | None:
    if not (settings.vapid_public_key or settings.vapid_private_key):
        return None
    return VapidConfig(
        settings.vapid_public_key, settings.vapid_private_key, settings.vapid_subject
    )


class Push:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        cache: Cache,
        presence: ConversationPresence,
    ) -> None:
        self.store = PushStore(db)
        notifications = NotificationStore(db)
        config = vapid_config(settings)
        self.sender: PushSender | None = None
        self.unread: UnreadPushes | None = None
        if config is None:
            log.warning(
                "web push is off: set VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT "
                "(`pitchey-comms vapid` prints a new key pair)"
            )
        else:
            signer = VapidSigner(config)
            self.sender = PushSender(
                self.store,
                signer,
                batch_timeout=settings.push_batch_timeout,
                retry_base=settings.push_retry_base,
                allow_private=settings.push_allow_private,
            )
            self.unread = UnreadPushes(
                store=self.store,
                notifications=notifications,
                users=UserStore(db),
                # The same cache as the notification service's: a PUT invalidates both.
                preferences=PreferenceService(notifications, cache, settings.preferences_cache_ttl),
                presence=presence,
                coalesce=settings.push_unread_coalesce,
                interval=settings.push_batch_timeout,
                on_queued=self.sender.wake,
            )
        self.service = PushService(
            self.store,
            public_key=config.public_key if config is not None else None,
            require_https=not settings.development,
            allow_private=settings.push_allow_private,
        )

    @property
    def enabled(self) -> bool:
        return self.sender is not None

    def wake(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    def start(self) -> None:
        if self.sender is not None:
            self.sender.start()
        if self.unread is not None:
            self.unread.start()

    async def stop(self) -> None:
        # The scan first: it queues work for the sender, and releases its lease.
        if self.unread is not None:
            await self.unread.stop()
        if self.sender is not None:
            await self.sender.stop()
