"""A user's data: the streamed export, and the erasure (accepted, stored, then carried out).

Every store that holds something about a user contributes a `storage.erasure.Part`
(a section of the export and a step of the erasure); `server.wiring` lists them. The
export writes the sections in that order; an erasure runs the steps in reverse order, so
the directory entry (listed first) goes last and later steps can still read it.

An erasure request is a row (`storage.erasure`) committed before the 202. A worker in
every process claims requests under a lease and runs them; a process killed mid-way
leaves a lease that lapses, and the request runs again from the start (each step is
idempotent). The user's sessions are closed when the request is stored and again when
the erasure is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import msgspec

from base.clock import iso
from base.periodic import Periodic
from delivery.notifications import Notifications
from delivery.ports import UserSessions
from storage.email import EmailStore
from storage.erasure import ErasureJob, ErasureStore, Part, Subject, listed
from storage.messages import now_ms
from storage.users import UserStore

log = logging.getLogger("pitchey.privacy")

_encode = msgspec.json.Encoder().encode
# The export is written in pieces of about this size: few writes, bounded memory.
_CHUNK_BYTES = 64 * 1024
# Rows read per query while exporting.
_PAGE = 200
# A claimed erasure is held this long and renewed after each step; a process that dies
# leaves it to another after at most this.
_LEASE_MS = 60_000
# A failed erasure is tried again after this long (storage was down, most likely).
_RETRY_MS = 5_000
# How often an idle worker looks for requests another process left behind.
_POLL_SECONDS = 5.0
CLOSE_REASON = "account erased"


class Privacy:
    def __init__(
        self,
        *,
        store: ErasureStore,
        directory: UserStore,
        parts: Sequence[Part],
        sessions: UserSessions,
        export_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        sections = [part.section for part in parts]
        if len(set(sections)) != len(sections):
            raise ValueError(f"export sections must be unique: {sections}")
        self.store = store
        self.directory = directory
        self.parts = tuple(parts)
        self.sessions = sessions
        self.export_timeout = export_timeout
        self._clock = clock
        self._holder = f"erasure-{uuid.uuid4().hex[:12]}"
        self._worker = Periodic(
            self._drain,
            _POLL_SECONDS,
            "erasure-worker",
            on_failure=lambda exc: log.warning("erasure worker: %s", exc),
        )

    # ---- export ---------------------------------------------------------------------

    async def export(self, user_id: str) -> AsyncGenerator[bytes, None]:
        """The JSON document, in pieces: `{"userId", "exportedAt", <section>: [...], ...,
        "complete": true}`. Past `export_timeout` seconds the document ends at once with
        `"complete": false` (still valid JSON), so one export cannot hold the server."""
        deadline = self._clock() + self.export_timeout
        profile = await self.directory.get(user_id)
        addresses = (profile.email.lower(),) if profile and profile.email else ()
        subject = Subject(user_id, addresses)
        head = {"userId": user_id, "exportedAt": iso(now_ms())}
        buffer = bytearray(_encode(head)[:-1])
        complete = True
        for part in self.parts:
            buffer += b',"' + part.section.encode() + b'":['
            first = True
            items = part.export(subject)
            try:
                while True:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        raise TimeoutError
                    try:
                        item = await asyncio.wait_for(anext(items), remaining)
                    except StopAsyncIteration:
                        break
                    if not first:
                        buffer += b","
                    buffer += _encode(item)
                    first = False
                    if len(buffer) >= _CHUNK_BYTES:
                        yield bytes(buffer)
                        buffer.clear()
            except TimeoutError:
                complete = False
            finally:
                await items.aclose()
            buffer += b"]"
            if not complete:
                log.warning("export of %s cut off after %ss", user_id, self.export_timeout)
                break
        buffer += b',"complete":' + (b"true" if complete else b"false") + b"}"
        yield bytes(buffer)

    # ---- erasure --------------------------------------------------------------------

    async def request_erasure(self, user_id: str, requested_by: str) -> int:
        """Store the request (the caller answers 202 after this), close the user's sessions,
        wake the worker. Returns when it was requested (ms)."""
        requested_at = await self.store.request(user_id, requested_by, now_ms())
        await self._close_sessions(user_id)
        self._worker.wake()
        return requested_at

    def start(self) -> None:
        self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    async def _drain(self) -> None:
        while await self.run_one():
            pass

    async def run_one(self) -> bool:
        """Claim and carry out one request; False when none is due."""
        job = await self.store.claim(self._holder, now_ms(), _LEASE_MS)
        if job is None:
            return False
        try:
            await self._erase(job)
        except Exception as exc:
            log.warning("erasure of %s failed, retrying: %r", job.user_id, exc)
            await self.store.failed(job.user_id, self._holder, repr(exc), now_ms() + _RETRY_MS)
            return False
        if await self.store.finish(job, self._holder, now_ms()):
            log.info("user %s erased", job.user_id)
        return True

    async def _erase(self, job: ErasureJob) -> None:
        addresses = (job.address.lower(),) if job.address else ()
        subject = Subject(job.user_id, addresses, actor=job.requested_by)
        await self._close_sessions(job.user_id)
        for part in reversed(self.parts):
            if part.erase is not None:
                await part.erase(subject)
                await self.store.renew(job.user_id, self._holder, now_ms() + _LEASE_MS)
        # A session opened while the erasure ran is closed too.
        await self._close_sessions(job.user_id)

    async def _close_sessions(self, user_id: str) -> None:
        try:
            await self.sessions.close_sessions(user_id, CLOSE_REASON)
        except Exception as exc:
            # The erasure removes every membership anyway (each announced on every node).
            log.warning("sessions of %s not closed: %s", user_id, exc)


def delivery_parts(service: Notifications, emails: EmailStore) -> list[Part]:
    """The inbox, preferences and emails. Emails come after notifications: erased first,
    while the notifications still say which emails were made for the user."""
    notifications = service.store

    async def inbox(subject: Subject) -> AsyncGenerator[Any, None]:
        after: tuple[int, str] = (-1, "")
        while page := await notifications.notifications_of(subject.user_id, after, _PAGE):
            for _, item in page:
                yield item
            after = page[-1][0]

    async def sent(subject: Subject) -> AsyncGenerator[Any, None]:
        after = ""
        while page := await emails.emails_of(subject.user_id, subject.addresses, after, _PAGE):
            for item in page:
                yield item
            after = page[-1]["id"]

    async def erase_notifications(subject: Subject) -> None:
        await notifications.erase_user(subject.user_id)
        # Every process's cached preferences of the user are dropped.
        await service.preferences.invalidate(subject.user_id)

    async def erase_emails(subject: Subject) -> None:
        await emails.erase_user(subject.user_id, subject.addresses)

    return [
        Part("notifications", inbox, erase_notifications),
        # Erased with the notifications (one step, see erase_user).
        Part("preferences", listed(notifications.export_preferences)),
        Part("emails", sent, erase_emails),
    ]
