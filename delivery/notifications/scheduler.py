"""Periodic notification work that exactly one process does at a time.

Every tick the process holding the `notifications-scheduler` lease (a database row
with an expiry, so it works on SQLite, PostgreSQL, with or without Redis) runs:

- the unread-message scan: one query finds participants with a message older than
  UNREAD_EMAIL_DELAY that they have neither read nor been emailed about, outside the
  users emailed within the last delay; each such user gets one `unread_messages` job
  covering all of them (naming senders and counts; quoting text only from conversations
  the user has written in; never mentioning anyone the user blocks), and marks record how
  far they were emailed;
- digests: users with notifications waiting for a daily or weekly digest get one
  `notification_digest` job per period window, the window starting at DIGEST_HOUR in
  their timezone. The (user, period, window) row is inserted in the same transaction
  as the job, under a unique key, so a window is never sent twice.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from base.failures import LoopFailures
from base.periodic import Periodic
from state.presence import PresenceTracker
from storage.db import DatabaseUnavailable
from storage.messages import MessageStore, now_ms
from storage.notifications import JobRow, NotificationRow, NotificationStore, UnreadCandidate
from storage.users import UserStore

from .preferences import PreferenceService, plan_email
from .worker import MAX_LISTED, digest_items

log = logging.getLogger("pitchey.notifications.scheduler")

LEASE_NAME = "notifications-scheduler"
# Conversations quiet for longer than this are not scanned: their unread messages were
# handled by earlier scans (or the service was down for a week).
SCAN_HORIZON_MS = 7 * 24 * 3600 * 1000
# Candidate rows per scan; the rest wait for the next tick.
SCAN_LIMIT = 2000
# Messages quoted (and senders listed) in one unread email.
MAX_QUOTED = 20
# Unread messages counted per conversation in one email.
MAX_COUNTED = 100
PREVIEW_CHARS = 140
PERIODS = ("daily", "weekly")


def window_start(period: str, tz: ZoneInfo, hour: int, now: int) -> int:
    """The start (epoch ms) of the digest window containing `now`: the latest DIGEST_HOUR
    in the user's timezone (on a Monday for weekly) that is not in the future."""
    local = datetime.fromtimestamp(now / 1000, tz)
    day = local.date()
    if period == "weekly":
        day -= timedelta(days=day.weekday())
    start = datetime.combine(day, time(hour), tzinfo=tz)
    if start.timestamp() * 1000 > now:
        start = datetime.combine(
            day - timedelta(days=7 if period == "weekly" else 1), time(hour), tzinfo=tz
        )
    return int(start.timestamp() * 1000)


class NotificationScheduler:
    def __init__(
        self,
        *,
        store: NotificationStore,
        messages: MessageStore,
        users: UserStore,
        preferences: PreferenceService,
        presence: PresenceTracker,
        unread_delay: float,
        digest_hour: int,
        app_url: str,
        on_queued: Callable[[], None] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.messages = messages
        self.users = users
        self.preferences = preferences
        self.presence = presence
        self.delay_ms = int(unread_delay * 1000)
        self.digest_hour = digest_hour
        self.app_url = app_url
        self.on_queued = on_queued
        self.clock = clock
        # A few ticks per delay keeps an unread email at most ~25% late; 30 s is plenty
        # for hourly digests.
        self.interval = min(30.0, max(0.1, unread_delay / 4))
        # Longer than a tick plus its work, so the holder renews before it lapses.
        self.lease_ms = int(max(10.0, self.interval * 4) * 1000)
        self.holder = f"scheduler-{uuid.uuid4()}"
        # (user, period) -> the next window start: users whose waiting notifications all
        # belong to the open window are not looked at again until it closes.
        self._not_before: dict[tuple[str, str], int] = {}
        self._failures = LoopFailures(log, "notification scheduler", DatabaseUnavailable)
        self._periodic = Periodic(
            self.tick,
            self.interval,
            "notification-scheduler",
            on_failure=self._failures,
            on_stop=self._release,
        )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _release(self) -> None:
        with contextlib.suppress(Exception):
            await self.store.release_lease(LEASE_NAME, self.holder)

    async def tick(self) -> bool:
        """One round if this process holds the lease; True if it did."""
        now = self.clock()
        held = await self.store.acquire_lease(LEASE_NAME, self.holder, now, self.lease_ms)
        self._failures.succeeded()
        if not held:
            return False
        queued = await self.scan_unread(now)
        queued += await self.send_digests(now)
        if queued and self.on_queued is not None:
            self.on_queued()
        return True

    # ---- unread messages ------------------------------------------------------

    async def scan_unread(self, now: int) -> int:
        cutoff = now - self.delay_ms
        found = await self.store.unread_candidates(now - SCAN_HORIZON_MS, cutoff, SCAN_LIMIT)
        by_user: dict[str, list[UnreadCandidate]] = defaultdict(list)
        for candidate in found:
            by_user[candidate.user_id].append(candidate)
        queued = 0
        for user_id, candidates in by_user.items():
            try:
                queued += await self._unread_for(user_id, candidates, now)
            except Exception:
                # One user's failure must not stop the others' emails.
                log.exception("unread-message email for %s failed", user_id)
        return queued

    async def _unread_for(self, user_id: str, candidates: list[UnreadCandidate], now: int) -> int:
        marks = [(c.conversation_id, c.last_seq) for c in candidates]
        unseen = [
            c
            for c in candidates
            # Online in the conversation now: they are looking at it, no email.
            if user_id not in await self.presence.online(c.conversation_id)
        ]
        prefs = await self.preferences.get(user_id)
        plan = plan_email(prefs.of("unread_messages"), False, prefs.quiet_hours, prefs.zone, now)
        if not unseen or not plan.send:
            await self.store.mark_unread_handled(user_id, marks, None, now)
            return 0
        ids = [c.conversation_id for c in unseen]
        # Text is quoted only where the recipient has written too: a stranger who puts
        # people into a conversation must not make our sender carry their words (or a
        # title such as "Pitchey Security Team") to those people's inboxes.
        replied = await self.store.conversations_with_sender(user_id, ids)
        titles = await self.store.conversation_titles(sorted(replied))
        counts: dict[str, int] = defaultdict(int)
        pending: list[tuple[str, str, str]] = []
        for candidate in unseen:
            # Nothing from people the user blocks: not counted, named nor quoted, and no
            # email at all when only they wrote.
            rows = await self.messages.messages(
                candidate.conversation_id,
                after=candidate.from_seq - 1,
                limit=MAX_COUNTED,
                viewer=user_id,
            )
            for row in rows:
                deleted = row.deleted_at is not None  # its content is gone: nothing to tell
                if row.sender_id != user_id and row.seq <= candidate.last_seq and not deleted:
                    counts[row.sender_id] += 1
                    if candidate.conversation_id in replied:
                        pending.append((row.sender_id, candidate.conversation_id, row.content))
        if not counts:
            await self.store.mark_unread_handled(user_id, marks, None, now)
            return 0
        profiles = await self.users.get_many(sorted(counts))

        def name(sender: str) -> str:
            profile = profiles.get(sender)
            return (profile.name if profile else None) or sender

        # Most messages first; the subject names the first sender.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], name(item[0])))
        quoted = [
            {
                "sender": name(sender),
                "conversation": titles.get(conversation_id) or "a conversation",
                "preview": content[:PREVIEW_CHARS],
            }
            for sender, conversation_id, content in pending[:MAX_QUOTED]
        ]
        data: dict[str, Any] = {
            "sender": name(ranked[0][0]),
            "others": len(ranked) - 1,
            "count": sum(counts.values()),
            "senders": [{"name": name(sender), "count": n} for sender, n in ranked[:MAX_QUOTED]],
            "messages": quoted,
            "url": f"{self.app_url}/messages",
        }
        job = JobRow(
            id=str(uuid.uuid4()),
            user_id=user_id,
            notification_id=None,
            template="unread_messages",
            data=data,
            category="unread_messages",
            dedupe_key=f"unread:{user_id}:{now}",
        )
        await self.store.mark_unread_handled(user_id, marks, (job, plan.due_at), now)
        return 1

    # ---- digests ----------------------------------------------------------------

    async def send_digests(self, now: int) -> int:
        queued = 0
        for period in PERIODS:
            for user_id in await self.store.digest_users(period, SCAN_LIMIT):
                try:
                    if await self._digest_for(user_id, period, now):
                        queued += 1
                except Exception:
                    log.exception("%s digest for %s failed", period, user_id)
        return queued

    async def _digest_for(self, user_id: str, period: str, now: int) -> bool:
        if self._not_before.get((user_id, period), 0) > now:
            return False
        prefs = await self.preferences.get(user_id)
        start = window_start(period, prefs.zone, self.digest_hour, now)
        label = "today" if period == "daily" else "this week"

        def build(rows: list[NotificationRow]) -> JobRow:
            return JobRow(
                id=str(uuid.uuid4()),
                user_id=user_id,
                notification_id=None,
                template="notification_digest",
                data={"period": label, "items": digest_items(rows[:MAX_LISTED])},
                category=f"digest_{period}",
                dedupe_key=f"digest:{user_id}:{period}:{start}",
            )

        job = await self.store.create_digest(user_id, period, start, build, now)
        if len(self._not_before) > 100_000:
            self._not_before.clear()
        # A hint, not a guarantee: a DST shift only makes the next look an hour early.
        self._not_before[(user_id, period)] = start + (7 if period == "weekly" else 1) * 86_400_000
        return job is not None
