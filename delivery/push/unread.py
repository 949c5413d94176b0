"""Unread-message pushes: a nudge per conversation to participants who are not looking.

Every PUSH_BATCH_TIMEOUT the process holding the `push-unread` lease looks for
conversations whose newest message (from someone else, not deleted, recent) is past
what a participant with a push subscription has read and past what an earlier push
covered. A participant online in the conversation on any process (presence, as for
unread-message emails) gets nothing; the others get one push titled with the sender's
name, at most one per conversation per PUSH_UNREAD_COALESCE seconds. The text is quoted
only if the recipient has written in the conversation (as in unread-message emails):
otherwise anyone could make our push carry their words to a stranger's lock screen.
Preferences (`unread_messages.push`) and quiet hours apply; a push in quiet hours is not
sent later (it would be stale), the unread-message email covers it.
The mark and the push are written in one transaction, so a message is pushed once.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable

from base.failures import LoopFailures
from base.periodic import Periodic
from delivery import push_payload as payloads
from delivery.notifications.preferences import PreferenceService, quiet_until
from delivery.ports import ConversationPresence
from storage.db import DatabaseUnavailable
from storage.messages import now_ms
from storage.notifications import NotificationStore
from storage.push import PushStore, QueuedPush, UnreadPushCandidate
from storage.users import UserStore

log = logging.getLogger("pitchey.push.unread")

LEASE_NAME = "push-unread"
KIND = "unread_messages"
# Messages older than this are not pushed about (the service was down, or the user
# subscribed long after): a push is a nudge now, the email and the inbox cover the past.
HORIZON_MS = 10 * 60 * 1000
SCAN_LIMIT = 500
PREVIEW_CHARS = 140
# A message push is worth showing for an hour; after that the push service may drop it.
TTL = 3600


class UnreadPushes:
    def __init__(
        self,
        *,
        store: PushStore,
        notifications: NotificationStore,
        users: UserStore,
        preferences: PreferenceService,
        presence: ConversationPresence,
        coalesce: float,
        interval: float,
        on_queued: Callable[[], None] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.notifications = notifications
        self.users = users
        self.preferences = preferences
        self.presence = presence
        self.coalesce_ms = int(coalesce * 1000)
        self.on_queued = on_queued
        self.clock = clock
        self.horizon_ms = max(HORIZON_MS, 2 * self.coalesce_ms)
        self.lease_ms = int(max(10.0, interval * 4) * 1000)
        self.holder = f"push-unread-{uuid.uuid4()}"
        self._failures = LoopFailures(log, "unread-message push scan", DatabaseUnavailable)
        self._periodic = Periodic(
            self.tick,
            interval,
            "push-unread",
            on_failure=self._failures,
            on_stop=self._release,
        )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _release(self) -> None:
        with contextlib.suppress(Exception):
            await self.notifications.release_lease(LEASE_NAME, self.holder)

    async def tick(self) -> int:
        now = self.clock()
        held = await self.notifications.acquire_lease(LEASE_NAME, self.holder, now, self.lease_ms)
        self._failures.succeeded()
        if not held:
            return 0
        found = await self.store.unread_candidates(
            now - self.horizon_ms, now - self.coalesce_ms, SCAN_LIMIT
        )
        queued = 0
        for candidate in found:
            try:
                queued += await self._one(candidate, now)
            except Exception:
                # One user's failure must not stop the others' pushes.
                log.exception("unread push for %s failed", candidate.user_id)
        if queued and self.on_queued is not None:
            self.on_queued()
        return queued

    async def _one(self, candidate: UnreadPushCandidate, now: int) -> int:
        user_id, conversation_id = candidate.user_id, candidate.conversation_id
        online = user_id in await self.presence.online(conversation_id)
        prefs = await self.preferences.get(user_id)
        wanted = prefs.of(KIND).push and quiet_until(prefs.quiet_hours, prefs.zone, now) is None
        if online or not wanted:
            await self.store.mark_unread(user_id, conversation_id, candidate.seq, None, now)
            return 0
        profile = (await self.users.get_many([candidate.sender_id])).get(candidate.sender_id)
        sender = (profile.name if profile is not None else None) or candidate.sender_id
        replied = await self.notifications.conversations_with_sender(user_id, [conversation_id])
        body = candidate.content[:PREVIEW_CHARS] if conversation_id in replied else "New message"
        payload = payloads.build(
            title=sender,
            body=body,
            path=f"/messages/{conversation_id}",
            tag=f"conversation:{conversation_id}",
            kind=KIND,
            extra={"conversationId": conversation_id},
        )
        push = QueuedPush(
            key=f"unread:{user_id}:{conversation_id}:{candidate.seq}",
            user_id=user_id,
            payload=payload,
            urgency="normal",
            ttl=TTL,
            due_at=now,
        )
        await self.store.mark_unread(user_id, conversation_id, candidate.seq, push, now)
        return 1
