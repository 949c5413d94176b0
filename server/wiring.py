"""The composition root: builds every component from settings once, and takes them down in order.

Swap points (database, broker, cache, rate limiter, presence, object store, email
providers) are chosen here and nowhere else. `build` reads top to bottom in the order
things start; `shutdown` stops them in the reverse order, after the writer has flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attachments.service import EMAIL, MESSAGE, Attachments, EmailBucket
from delivery.email import EmailService
from delivery.failover import ProviderRouter, RetryPolicy
from delivery.intake import WebhookIntake
from delivery.notifications import Notifications
from delivery.notifications.alerts import AdminAlerts
from delivery.privacy import Privacy, delivery_parts
from delivery.providers import build_providers
from delivery.providers.base import MAX_MESSAGE_BYTES
from delivery.push import Push
from delivery.render import TemplateRenderer
from delivery.unsubscribe import Unsubscribe
from delivery.webhooks_out.sender import WebhookSender
from delivery.webhooks_out.service import Webhooks
from delivery.worker import EmailWorker
from rooms.broker import Broker, MemoryBroker, Resubscribed, conversation_of
from rooms.personal import conversation_parts
from rooms.registry import RoomRegistry
from rooms.retention import RetentionSweeper
from rooms.service import Messaging
from rooms.session import CLOSE_GOING_AWAY, Session
from rooms.users import UserHub
from rooms.views import OfflineAnnouncer
from schemas.settings import Settings
from server.auth import TokenVerifier
from server.runtime import Runtime
from state.cache import Cache, MemoryCache
from state.connections import ConnectionCounter, MemoryConnectionCounter
from state.presence import MemoryPresence, PresenceTracker
from state.ratelimit import MemoryRateLimiter, RateLimiter
from state.tickets import MemoryTicketStore, TicketStore
from storage.attachments import AttachmentStore
from storage.db import Database, open_database
from storage.email import EmailStore
from storage.erasure import ErasureStore, Part, by_user, listed
from storage.messages import BlockStore, MessageStore
from storage.migrations import migrate
from storage.objects import ObjectStore, open_objects
from storage.users import UserStore
from storage.webhooks import WebhookStore

log = logging.getLogger("pitchey.wiring")


@dataclass(frozen=True, slots=True)
class SharedState:
    """What every process shares: in memory alone, through Redis when REDIS_URL is set."""

    broker: Broker
    cache: Cache
    limiter: RateLimiter
    presence: PresenceTracker
    connections: ConnectionCounter
    tickets: TicketStore
    # Besides the rooms' resync: what else must happen when channels are subscribed again.
    resubscribed: Resubscribed | None = None


@dataclass
class Services:
    settings: Settings
    db: Database
    broker: Broker
    cache: Cache
    limiter: RateLimiter
    presence: PresenceTracker
    store: MessageStore
    rooms: RoomRegistry
    users: UserHub
    messaging: Messaging
    message_objects: ObjectStore
    email_objects: ObjectStore
    attachments: Attachments
    email_worker: EmailWorker
    email: EmailService
    webhooks: WebhookIntake
    notifications: Notifications
    push: Push
    webhooks_out: Webhooks
    webhook_sender: WebhookSender
    privacy: Privacy
    retention: RetentionSweeper
    runtime: Runtime
    connections: ConnectionCounter
    tickets: TicketStore
    tokens: TokenVerifier
    sessions: dict[Session, None] = field(default_factory=dict)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    draining: bool = False


def shared_state(settings: Settings) -> SharedState:
    if not settings.redis_url:
        return SharedState(
            MemoryBroker(),
            MemoryCache(),
            MemoryRateLimiter(),
            MemoryPresence(),
            MemoryConnectionCounter(),
            MemoryTicketStore(),
        )
    if settings.redis_cluster_mode:
        return _cluster_state(settings)
    from rooms.redis_broker import RedisBroker
    from state.redis import (
        RedisCache,
        RedisConnectionCounter,
        RedisPresence,
        RedisRateLimiter,
        RedisTicketStore,
        command_client,
    )

    redis = command_client(settings.redis_url)
    prefix = settings.redis_prefix
    broker = RedisBroker(settings.redis_url, prefix, redis)
    presence = RedisPresence(
        redis,
        prefix,
        ttl=settings.presence_ttl,
        node=broker.node,
        went_offline=OfflineAnnouncer(broker),
    )
    return SharedState(
        broker,
        RedisCache(redis, prefix),
        RedisRateLimiter(redis, prefix),
        presence,
        # Counts of a node last as long as its presence heartbeat (same node id).
        RedisConnectionCounter(redis, prefix, node=broker.node),
        RedisTicketStore(redis, prefix),
    )


def _cluster_state(settings: Settings) -> SharedState:
    """The Redis twins on a Redis Cluster: sharded pub/sub, keys tagged by what goes together."""
    from rooms.cluster_broker import ClusterBroker
    from state.redis import (
        RedisCache,
        RedisConnectionCounter,
        RedisPresence,
        RedisRateLimiter,
        RedisTicketStore,
        cluster_client,
    )

    url = settings.redis_node_url
    redis = cluster_client(url)
    prefix = settings.redis_prefix
    broker = ClusterBroker(url, prefix, redis)
    presence = RedisPresence(
        redis,
        prefix,
        ttl=settings.presence_ttl,
        node=broker.node,
        went_offline=OfflineAnnouncer(broker),
        cluster=True,
    )
    restoring: set[asyncio.Task[None]] = set()

    def restore_presence(channels: Sequence[str]) -> None:
        # A master that came back empty lost the presence hashes of its conversations, which
        # are exactly the channels subscribed again on it (same hash tag).
        conversations = [c for c in map(conversation_of, channels) if c is not None]
        if conversations:
            task = asyncio.get_running_loop().create_task(presence.restore(conversations))
            restoring.add(task)
            task.add_done_callback(restoring.discard)

    return SharedState(
        broker,
        RedisCache(redis, prefix, cluster=True),
        RedisRateLimiter(redis, prefix),
        presence,
        RedisConnectionCounter(redis, prefix, node=broker.node, live_nodes=presence.live_nodes),
        RedisTicketStore(redis, prefix),
        resubscribed=restore_presence,
    )


def email_pipeline(
    settings: Settings, db: Database, limiter: RateLimiter, bucket: EmailBucket
) -> tuple[EmailService, EmailWorker]:
    """The request side and its worker (not started); the worker is built first so the
    service can wake it."""
    store = EmailStore(db)
    primary, fallback = build_providers(
        sendgrid_api_key=settings.sendgrid_api_key,
        sendgrid_api_url=settings.sendgrid_api_url,
        sendgrid_timeout=settings.sendgrid_timeout,
        sendgrid_connections=settings.email_send_concurrency,
        aws_access_key_id=settings.aws_ses_access_key,
        aws_secret_access_key=settings.aws_ses_secret_key,
        aws_region=settings.aws_ses_region,
        ses_endpoint_url=settings.aws_ses_endpoint_url or None,
        ses_configuration_set=settings.aws_ses_configuration_set or None,
    )
    policy = RetryPolicy(
        base_seconds=settings.email_retry_base,
        cap_seconds=settings.email_retry_cap,
        max_attempts=settings.email_max_attempts,
        breaker_threshold=settings.email_breaker_threshold,
        cooldown_seconds=settings.email_breaker_cooldown,
    )
    ses_sender = None
    if settings.aws_ses_from_email:
        ses_sender = (settings.aws_ses_from_email, settings.aws_ses_from_name or None)
    worker = EmailWorker(
        store=store,
        router=ProviderRouter(primary, fallback, policy),
        limiter=limiter,
        batch_size=settings.email_batch_size,
        batch_timeout=settings.email_batch_timeout,
        concurrency=settings.email_send_concurrency,
        claim_ttl=settings.email_claim_ttl,
        per_minute=settings.email_rate_limit_per_minute,
        per_hour=settings.email_rate_limit_per_hour,
        bulk_per_minute=settings.email_bulk_rate_limit_per_minute,
        bulk_per_hour=settings.email_bulk_rate_limit_per_hour,
        ses_sender=ses_sender,
        attachments=bucket,
    )
    # Accepted emails must fit the primary provider (a failover to SES may still refuse
    # one over its smaller limit); EMAIL_MAX_MESSAGE_BYTES may only lower the limit.
    limits = [MAX_MESSAGE_BYTES.get(primary.name), settings.email_max_message_bytes or None]
    service = EmailService(
        store=store,
        renderer=TemplateRenderer(
            Path(settings.email_template_dir) if settings.email_template_dir else None,
            ttl_seconds=settings.email_template_ttl,
            app_url=settings.app_url,
        ),
        from_email=settings.sendgrid_from_email,
        from_name=settings.sendgrid_from_name,
        provider=primary.name,
        max_message_bytes=min((n for n in limits if n is not None), default=None),
        on_enqueued=worker.notify,
        unsubscribe=Unsubscribe(settings.jwt_secret, settings.public_url or settings.app_url),
    )
    return service, worker


async def build(settings: Settings) -> Services:
    # 1. The database, migrated.
    db = open_database(settings.database_url)
    await db.connect()
    applied = await migrate(db)
    if applied:
        log.info("database migrated to version %d", applied[-1])
    # 2. Shared state, and the real-time core on top of it.
    state = shared_state(settings)
    store = MessageStore(db)
    rooms = RoomRegistry(
        store=store,
        broker=state.broker,
        presence=state.presence,
        max_replay=settings.ws_max_replay,
        typing_ttl=settings.typing_ttl,
        presence_flush_interval=settings.presence_flush_interval,
        presence_broadcast_max=settings.presence_broadcast_max_members,
        fanout_slice=settings.ws_fanout_slice,
        io_timeout=settings.room_io_timeout,
        join_timeout=settings.room_join_timeout,
    )
    users = UserHub(state.broker)
    messaging = Messaging(
        store=store,
        directory=UserStore(db),
        blocks=BlockStore(db),
        batch_max=settings.message_batch_max,
        rooms=rooms,
        broker=state.broker,
        cache=state.cache,
        limiter=state.limiter,
        rate_per_minute=settings.message_rate_limit_per_minute,
        max_chars=settings.message_max_chars,
        list_ttl=settings.conversation_cache_ttl,
        create_rate_per_minute=settings.conversation_create_rate_per_minute,
        max_participants=settings.conversation_max_participants,
        typing_interval=settings.typing_relay_interval,
        edit_window=settings.message_edit_window,
        max_blocks=settings.blocks_max_per_user,
    )

    def resubscribed(channels: Sequence[str]) -> None:
        # Events (and membership notices) published while the broker was away may be lost.
        rooms.resync(channels)
        messaging.forget_members()
        if state.resubscribed is not None:
            state.resubscribed(channels)

    await state.broker.start(on_resubscribed=resubscribed)
    await state.presence.start()
    messaging.start()
    await messaging.listen()
    # 3. Both buckets, opened once: attachments write them, the email worker reads one.
    message_objects = open_objects(settings, settings.message_attachments_bucket)
    email_objects = open_objects(settings, settings.email_attachments_bucket)
    await message_objects.start()
    await email_objects.start()
    uploads = AttachmentStore(db)
    attachments = Attachments(
        settings=settings,
        store=uploads,
        objects={MESSAGE: message_objects, EMAIL: email_objects},
        messaging=messaging,
    )
    attachments.start()
    # 4. Email: the worker, the request side that wakes it, provider webhooks in.
    email, email_worker = email_pipeline(
        settings, db, state.limiter, EmailBucket(uploads, email_objects)
    )
    webhooks = WebhookIntake(
        email.store,
        sendgrid_public_key=settings.sendgrid_webhook_public_key,
        sns_topic_arns=settings.ses_sns_topic_arns,
        sns_cert_host_pattern=settings.ses_sns_cert_host_pattern,
        require_topic_allowlist=not settings.development,
    )
    email_worker.start()
    # 5. Web Push: its outbox is written by notifications and by its own unread-message
    #    scan, which asks presence (state) who is looking at a conversation.
    push = Push(settings=settings, db=db, cache=state.cache, presence=state.presence)
    push.start()
    # 6. Notifications: they push frames through the user hub, queue into email and push.
    notifications = Notifications(
        settings=settings,
        db=db,
        messages=store,
        cache=state.cache,
        limiter=state.limiter,
        presence=state.presence,
        users=users,
        email=email,
        push=push,
    )
    notifications.start()
    # 7. Webhooks out: storage writes their outbox with each change; the sender drains it.
    webhook_store = WebhookStore(db)
    webhooks_out = Webhooks(webhook_store, allow_private=settings.webhook_allow_private)
    webhook_sender = WebhookSender(
        webhook_store,
        batch_size=settings.webhook_batch_size,
        batch_timeout=settings.webhook_batch_timeout,
        retry_base=settings.webhook_retry_base,
        retry_cap=settings.webhook_retry_cap,
        disable_after=settings.webhook_disable_after,
        timeout=settings.webhook_timeout,
        allow_private=settings.webhook_allow_private,
        alerts=AdminAlerts(notifications.service, settings.admin_user_ids),
    )
    webhook_sender.start()
    # 7. Retention and erasure. Each store holding something about a user adds its Part:
    # export writes them in this order, erasure runs them in reverse (the profile last).
    directory = UserStore(db)

    async def push_export(user_id: str) -> list[dict[str, Any]]:
        # One item: the user's subscriptions (without their keys) and pending pushes.
        return [await push.store.export_user(user_id)]

    privacy = Privacy(
        store=ErasureStore(db),
        directory=directory,
        parts=[
            Part("profile", listed(directory.export_user), by_user(directory.erase_user)),
            *conversation_parts(messaging),
            *delivery_parts(notifications, email.store),
            Part("pushSubscriptions", listed(push_export), by_user(push.store.erase_user)),
        ],
        sessions=users,
        export_timeout=settings.user_export_timeout,
    )
    privacy.start()
    retention = RetentionSweeper(
        messaging,
        days=settings.message_retention_days,
        interval=settings.message_retention_sweep_interval,
    )
    retention.start()
    sessions: dict[Session, None] = {}
    runtime = Runtime(
        connections=sessions.__len__,
        freeze=settings.gc_freeze,
        gen0_threshold=settings.gc_gen0_threshold,
        freeze_after_connections=settings.gc_freeze_after_connections,
    )
    services = Services(
        settings=settings,
        db=db,
        broker=state.broker,
        cache=state.cache,
        limiter=state.limiter,
        presence=state.presence,
        store=store,
        rooms=rooms,
        users=users,
        messaging=messaging,
        message_objects=message_objects,
        email_objects=email_objects,
        attachments=attachments,
        email_worker=email_worker,
        email=email,
        webhooks=webhooks,
        notifications=notifications,
        push=push,
        webhooks_out=webhooks_out,
        webhook_sender=webhook_sender,
        privacy=privacy,
        retention=retention,
        runtime=runtime,
        sessions=sessions,
        connections=state.connections,
        tickets=state.tickets,
        tokens=TokenVerifier(settings.jwt_secret),
    )
    # 8. Last: start-up objects are frozen out of the collector once everything is built.
    runtime.start()
    if settings.ws_idle_timeout > 0:
        services.background.append(asyncio.create_task(_close_idle(services), name="idle-sweeper"))
    return services


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
    await services.messaging.stop()
    for task in services.background:
        task.cancel()
    for task in services.background:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # 4. The rest in the reverse order of `build`; one failure does not stop the others.
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("runtime", services.runtime.stop),
        ("retention sweep", services.retention.stop),
        ("erasure worker", services.privacy.stop),
        ("webhook sender", services.webhook_sender.stop),
        ("notifications", services.notifications.stop),
        ("push", services.push.stop),
        ("email worker", services.email_worker.stop),
        ("attachments", services.attachments.stop),
        ("email bucket", services.email_objects.stop),
        ("message bucket", services.message_objects.stop),
        ("rooms", services.rooms.stop_all),
        ("presence", services.presence.stop),
        ("broker", services.broker.stop),
        ("database", services.db.close),
    ]
    for name, stop in steps:
        try:
            await stop()
        except Exception:
            log.exception("stopping %s failed", name)


@contextlib.asynccontextmanager
async def lifespan_for(settings: Settings) -> AsyncIterator[Services]:
    services = await build(settings)
    try:
        yield services
    finally:
        await shutdown(services)
