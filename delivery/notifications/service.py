"""The notification service: store, push in-app at once, queue the email through preferences.

A notification is accepted once its row and its email job are committed together;
the in-app frame is pushed right after, the email leaves through the worker.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from base.clock import iso
from base.errors import Invalid, NotFound
from delivery import push_payload as payloads
from delivery.ports import UserFrames
from schemas.codec import encode
from schemas.notifications import (
    Accepted,
    InboxCount,
    InboxFrame,
    Notification,
    NotificationFrame,
    NotificationPage,
)
from state.ratelimit import RateLimiter
from storage.messages import now_ms
from storage.notifications import FOLD_CATEGORY, FOLDED, JobRow, NotificationRow, NotificationStore
from storage.push import QueuedPush

from .preferences import PreferenceService, is_critical, plan_email, plan_push

log = logging.getLogger("pitchey.notifications")

IN_APP = "in-app"
EMAIL = "email"
PUSH = "push"
# How long a push service keeps a push for a browser that is offline: a critical one a
# day (the user must see it), the rest four hours (by then the inbox and email tell it).
CRITICAL_PUSH_TTL = 86_400
PUSH_TTL = 4 * 3600
# The rate limit's own window: a user over the limit gets at most one folded summary email
# per minute, sent a minute after the first notification that overflowed.
FOLD_DELAY_MS = 60_000


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One notification for one user, with the email it becomes if preferences allow."""

    user_id: str
    type: str
    title: str
    message: str
    data: dict[str, Any] | None = None
    priority: str = "normal"
    channels: frozenset[str] = frozenset({IN_APP, EMAIL, PUSH})
    template: str = "notification"
    template_data: dict[str, Any] = field(default_factory=dict)


class PushOutlet(Protocol):
    """The push pipeline as notifications see it (delivery.push.Push satisfies it)."""

    @property
    def enabled(self) -> bool: ...

    def wake(self) -> None: ...


def view(row: NotificationRow) -> Notification:
    return Notification(
        id=row.id,
        user_id=row.user_id,
        type=row.type,
        title=row.title,
        message=row.message,
        data=row.data,
        priority=row.priority,
        created_at=iso(row.created_at),
        read_at=iso(row.read_at) if row.read_at is not None else None,
        email_status=row.email_status,
    )


class NotificationService:
    def __init__(
        self,
        *,
        store: NotificationStore,
        preferences: PreferenceService,
        users: UserFrames,
        limiter: RateLimiter,
        rate_per_minute: int,
        clock: Callable[[], int] = now_ms,
        on_queued: Callable[[], None] | None = None,
        push: PushOutlet | None = None,
        app_url: str = "",
    ) -> None:
        self.store = store
        self.push = push
        self.app_url = app_url
        self.preferences = preferences
        self.users = users
        self.limiter = limiter
        self.rate_per_minute = rate_per_minute
        self.clock = clock
        # Wakes the local worker when email jobs were queued.
        self.on_queued = on_queued

    # ---- creating ------------------------------------------------------------

    async def notify(self, items: Sequence[Outgoing]) -> Accepted:
        now = self.clock()
        rows: list[NotificationRow] = []
        jobs: list[tuple[JobRow, int]] = []
        folds: list[tuple[JobRow, int]] = []
        limited: list[str] = []
        pushes: list[QueuedPush] = []
        push_on = self.push is not None and self.push.enabled
        for item in items:
            prefs = await self.preferences.get(item.user_id)
            preference = prefs.of(item.type)
            critical = is_critical(item.type, item.priority)
            over = await self._over_limit(item.user_id)
            if over:
                limited.append(item.user_id)
            row = NotificationRow(
                id=str(uuid.uuid4()),
                user_id=item.user_id,
                type=item.type,
                title=item.title,
                message=item.message,
                data=item.data,
                priority=item.priority,
                created_at=now,
                in_app=IN_APP in item.channels and preference.in_app,
                email_status="none",
            )
            if EMAIL in item.channels:
                plan = plan_email(preference, critical, prefs.quiet_hours, prefs.zone, now)
                row.email_status = plan.status
                if plan.send and over and not critical:
                    # Over the limit: recorded and pushed, the email joins one summary.
                    row.email_status = FOLDED
                    folds.append((_fold_job(item.user_id), now + FOLD_DELAY_MS))
                elif plan.send:
                    job = JobRow(
                        id=str(uuid.uuid4()),
                        user_id=item.user_id,
                        notification_id=row.id,
                        template=item.template,
                        data=item.template_data or {"title": item.title, "message": item.message},
                        category=item.type,
                        dedupe_key=f"notification:{row.id}",
                    )
                    jobs.append((job, plan.due_at))
            # Over the rate limit a user's phone must not buzz for each one either: the
            # non-critical ones wait in the inbox (and the folded email).
            if push_on and PUSH in item.channels and not (over and not critical):
                push_plan = plan_push(preference, critical, prefs.quiet_hours, prefs.zone, now)
                if push_plan.send:
                    pushes.append(self._push_for(row, critical, push_plan.due_at))
            rows.append(row)
        counts = await self.store.insert(rows, jobs, folds, now, pushes)
        if (jobs or folds) and self.on_queued is not None:
            self.on_queued()
        if pushes and self.push is not None:
            self.push.wake()
        await self._push_new([r for r in rows if r.in_app], counts)
        return Accepted(ids=[r.id for r in rows], rate_limited=sorted(set(limited)))

    def _push_for(self, row: NotificationRow, critical: bool, due_at: int) -> QueuedPush:
        path = payloads.app_path((row.data or {}).get("url"), self.app_url, "/notifications")
        return QueuedPush(
            key=f"notification:{row.id}",
            user_id=row.user_id,
            payload=payloads.build(
                title=row.title,
                body=row.message,
                path=path,
                tag=f"notification:{row.id}",
                kind=row.type,
                extra={"notificationId": row.id},
            ),
            urgency="high" if critical else ("low" if row.priority == "low" else "normal"),
            ttl=CRITICAL_PUSH_TTL if critical else PUSH_TTL,
            due_at=due_at,
        )

    async def _over_limit(self, user_id: str) -> bool:
        if not self.rate_per_minute:
            return False
        retry_after = await self.limiter.hit(f"notif:{user_id}", self.rate_per_minute, 60.0)
        return retry_after > 0

    async def _push_new(self, rows: Sequence[NotificationRow], counts: dict[str, int]) -> None:
        for row in rows:
            # One encode per recipient; the broker carries the bytes to every session.
            frame = NotificationFrame(notification=view(row), unread_count=counts[row.user_id])
            try:
                await self.users.publish(row.user_id, encode(frame))
            except Exception:
                # Stored already: the user finds it in GET /api/notifications.
                log.warning("push of notification %s to %s failed", row.id, row.user_id)

    # ---- the inbox -------------------------------------------------------------

    async def page(
        self, user_id: str, unread_only: bool, cursor: str | None, limit: int
    ) -> NotificationPage:
        before = _decode_cursor(cursor) if cursor else None
        rows = await self.store.page(user_id, unread_only, before, limit + 1)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(rows[-1].created_at, rows[-1].id)
        return NotificationPage(
            items=[view(r) for r in rows],
            next_cursor=next_cursor,
            unread_count=await self.store.unread_count(user_id),
        )

    async def read(self, user_id: str, notification_id: str) -> InboxCount:
        changed = await self.store.mark_read(user_id, notification_id, self.clock())
        if changed is None:
            raise NotFound("notification not found")
        return await self._inbox_changed(user_id, push=changed)

    async def read_all(self, user_id: str) -> InboxCount:
        changed = await self.store.mark_all_read(user_id, self.clock())
        return await self._inbox_changed(user_id, push=changed > 0)

    async def _inbox_changed(self, user_id: str, push: bool) -> InboxCount:
        count = await self.store.unread_count(user_id)
        if push:
            await self.users.publish(user_id, encode(InboxFrame(unread_count=count)))
        return InboxCount(unread_count=count)


def _fold_job(user_id: str) -> JobRow:
    return JobRow(
        id=str(uuid.uuid4()),
        user_id=user_id,
        notification_id=None,
        template="notification_digest",
        data={"period": "in the last minute"},
        category=FOLD_CATEGORY,
        dedupe_key=f"fold:{uuid.uuid4()}",
    )


def _encode_cursor(created_at: int, notification_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}:{notification_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created, notification_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        return int(created), notification_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("cursor is not valid") from exc
