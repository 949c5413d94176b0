"""Notifications: in-app inbox pushed in real time, preferences, workflows, emails, digests.

`Notifications` wires the pieces; `server.wiring` builds one per process and stops it.
"""

from __future__ import annotations

from collections.abc import Callable

from delivery.ports import UserFrames
from schemas.settings import Settings
from state.cache import Cache
from state.presence import PresenceTracker
from state.ratelimit import RateLimiter
from storage.db import Database
from storage.messages import MessageStore, now_ms
from storage.notifications import NotificationStore
from storage.users import UserStore

from .preferences import PreferenceService
from .scheduler import NotificationScheduler
from .service import NotificationService, Outgoing, PushOutlet
from .worker import EmailQueue, NotificationWorker

__all__ = ["Notifications", "Outgoing"]


class Notifications:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        messages: MessageStore,
        cache: Cache,
        limiter: RateLimiter,
        presence: PresenceTracker,
        users: UserFrames,
        email: EmailQueue,
        push: PushOutlet | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = NotificationStore(db)
        self.directory = UserStore(db)
        self.app_url = settings.app_url.rstrip("/")
        self.preferences = PreferenceService(
            self.store, cache, settings.preferences_cache_ttl, clock
        )

        self.worker = NotificationWorker(
            store=self.store,
            users=self.directory,
            email=email,
            batch_size=settings.notification_batch_size,
            batch_timeout=settings.notification_batch_timeout,
            clock=clock,
        )
        self.service = NotificationService(
            store=self.store,
            preferences=self.preferences,
            users=users,
            limiter=limiter,
            rate_per_minute=settings.notification_rate_limit_per_minute,
            clock=clock,
            on_queued=self.worker.wake,
            push=push,
            app_url=self.app_url,
        )
        self.scheduler = NotificationScheduler(
            store=self.store,
            messages=messages,
            users=self.directory,
            preferences=self.preferences,
            presence=presence,
            unread_delay=settings.unread_email_delay,
            digest_hour=settings.digest_hour,
            app_url=self.app_url,
            on_queued=self.worker.wake,
            clock=clock,
        )

    def start(self) -> None:
        self.worker.start()
        self.scheduler.start()

    async def stop(self) -> None:
        # The scheduler first: it queues work for the worker, and releases its lease.
        await self.scheduler.stop()
        await self.worker.stop()
