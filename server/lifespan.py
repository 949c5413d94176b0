"""Builds the running service from settings once, and takes it down in order.

Swap points (database, broker, cache, rate limiter, presence) are chosen here
and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from delivery.notifications import Notifications
from delivery.pipeline import build_email
from rooms.attachments import start_attachments
from rooms.broker import Broker, MemoryBroker
from rooms.cache import Cache, MemoryCache
from rooms.presence import MemoryPresence, PresenceTracker
from rooms.ratelimit import MemoryRateLimiter, RateLimiter
from rooms.registry import RoomRegistry
from rooms.service import Messaging
from rooms.session import CLOSE_GOING_AWAY, Session
from rooms.users import UserHub
from rooms.writer import MessageWriter
from schemas.settings import Settings
from storage.db import Database, open_database
from storage.messages import MessageStore
from storage.migrations import migrate

log = logging.getLogger("pitchey.lifespan")


@dataclass
class Services:
    settings: Settings
    db: Database
    broker: Broker
    cache: Cache
    limiter: RateLimiter
    presence: PresenceTracker
    store: MessageStore
    writer: MessageWriter
    rooms: RoomRegistry
    users: UserHub
    messaging: Messaging
    sessions: dict[Session, None] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    draining: bool = False


def _shared_state(settings: Settings) -> tuple[Broker, Cache, RateLimiter, PresenceTracker]:
    if settings.redis_url:
        from rooms.redis_state import redis_backends

        backends: tuple[Broker, Cache, RateLimiter, PresenceTracker] = redis_backends(settings)
        return backends
    return MemoryBroker(), MemoryCache(), MemoryRateLimiter(), MemoryPresence()


async def build(settings: Settings) -> Services:
    db = open_database(settings.database_url)
    await db.connect()
    applied = await migrate(db)
    if applied:
        log.info("database migrated to version %d", applied[-1])
    broker, cache, limiter, presence = _shared_state(settings)
    await broker.start()
    await presence.start()
    store = MessageStore(db)
    rooms = RoomRegistry(
        store=store,
        broker=broker,
        presence=presence,
        max_replay=settings.ws_max_replay,
        typing_ttl=settings.typing_ttl,
    )
    broker.on_resubscribed = rooms.resync
    writer = MessageWriter(store, broker, batch_max=settings.message_batch_max)
    messaging = Messaging(
        store=store,
        writer=writer,
        rooms=rooms,
        broker=broker,
        cache=cache,
        limiter=limiter,
        rate_per_minute=settings.message_rate_limit_per_minute,
        max_chars=settings.message_max_chars,
        list_ttl=settings.conversation_cache_ttl,
    )
    writer.after_commit = messaging.after_commit
    writer.start()
    messaging.start()
    services = Services(
        settings=settings,
        db=db,
        broker=broker,
        cache=cache,
        limiter=limiter,
        presence=presence,
        store=store,
        writer=writer,
        rooms=rooms,
        users=UserHub(broker),
        messaging=messaging,
    )
    # Email: the request side and its worker; shutdown stops the worker first.
    services.extras["email"], services.extras["email_worker"] = build_email(settings, db, limiter)
    # Attachments: both buckets on the configured backend, and the unattached-upload sweeper.
    services.extras["attachments"] = await start_attachments(settings, db, messaging)
    # Notifications last: stopped first, before the email pipeline they feed.
    services.extras["notifications"] = start_notifications(services)
    if settings.ws_idle_timeout > 0:
        services.background.append(asyncio.create_task(_close_idle(services), name="idle-sweeper"))
    return services


def start_notifications(services: Services) -> Notifications:
    notifications = Notifications(
        settings=services.settings,
        db=services.db,
        messages=services.store,
        cache=services.cache,
        limiter=services.limiter,
        presence=services.presence,
        users=services.users,
        extras=services.extras,
    )
    notifications.start()
    return notifications


async def _close_idle(services: Services) -> None:
    timeout = services.settings.ws_idle_timeout
    # Sweep a few times per timeout: a connection is closed at most 25% late.
    period = max(0.05, timeout / 4)
    while True:
        await asyncio.sleep(period)
        cutoff = time.monotonic() - timeout
        for session in list(services.sessions):
            if session.last_seen < cutoff:
                session.close(CLOSE_GOING_AWAY, "idle timeout")


async def shutdown(services: Services) -> None:
    # 1. Stop accepting: new connections and sends are refused from here on.
    services.draining = True
    # 2. Ask every client to reconnect elsewhere (1001 going away).
    for session in list(services.sessions):
        session.close(CLOSE_GOING_AWAY, "server shutting down")
    # 3. Flush the group-commit writer: every acknowledged message is stored.
    await services.writer.stop()
    await services.messaging.stop()
    for task in services.background:
        task.cancel()
    for task in services.background:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # 4. Stop rooms, then the shared backends, then the database.
    await services.rooms.stop_all()
    for name, extra in reversed(list(services.extras.items())):
        stop = getattr(extra, "stop", None)
        if stop is not None:
            try:
                await stop()
            except Exception:
                log.exception("stopping %s failed", name)
    await services.presence.stop()
    await services.broker.stop()
    await services.db.close()


@contextlib.asynccontextmanager
async def lifespan_for(settings: Settings) -> AsyncIterator[Services]:
    services = await build(settings)
    try:
        yield services
    finally:
        await shutdown(services)
