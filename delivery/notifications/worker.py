"""The notification email worker: claims due jobs in batches and hands them to the email queue.

A batch runs once NOTIFICATION_BATCH_SIZE jobs are due or the oldest due job has waited
NOTIFICATION_BATCH_TIMEOUT, whichever comes first (the seed's 10 or 30 s). Jobs are
leased, so a crashed worker's batch is taken up by another after the lease; each job's
failure is caught on its own and retried with backoff, so one bad address cannot stall
or duplicate the others (the email's dedupe key makes a retried submit harmless).
A batch's emails are stored in one transaction and its jobs finished in another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from base.clock import iso
from base.errors import Invalid
from delivery.email import InternalEmail
from delivery.unsubscribe import Target
from storage.messages import now_ms
from storage.notifications import (
    FOLD_CATEGORY,
    FinishedJob,
    JobRow,
    NotificationRow,
    NotificationStore,
)
from storage.users import UserStore

from .legacy import camel_case_data
from .preferences import is_critical

log = logging.getLogger("pitchey.notifications.worker")

# A claimed batch is somebody's for this long; a submit to the email queue is one insert.
LEASE_MS = 60_000
# Retries back off from 2 s to 10 min, then the job is marked failed.
RETRY_BASE_MS = 2_000
RETRY_CAP_MS = 600_000
MAX_ATTEMPTS = 8
# A due batch claims up to this many jobs, not only NOTIFICATION_BATCH_SIZE: the batch
# size says when to start (the seed's 10), and one alert to thousands of users would
# otherwise cost a claim, a profile read and their commits for every ten of them.
CLAIM_MAX = 200
# Folded summaries and digests list at most this many entries; the rest are counted.
MAX_LISTED = 50


def digest_items(rows: Sequence[NotificationRow]) -> list[dict[str, Any]]:
    """Notifications as the notification_digest template's `items`."""
    items: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {
            "title": row.title,
            "message": row.message,
            "createdAt": iso(row.created_at),
        }
        url = (row.data or {}).get("url")
        if isinstance(url, str):
            item["url"] = url
        items.append(item)
    return items


class EmailQueue(Protocol):
    async def submit_internal_many(self, requests: Sequence[InternalEmail]) -> list[str | Invalid]:
        """Store every new email in one go; each request's email id or why it was refused."""
        ...

    def flush(self) -> None: ...


class NotificationWorker:
    def __init__(
        self,
        *,
        store: NotificationStore,
        users: UserStore,
        email: EmailQueue,
        batch_size: int,
        batch_timeout: float,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.users = users
        self.email = email
        self.batch_size = batch_size
        self.batch_timeout_ms = int(batch_timeout * 1000)
        self.clock = clock
        self.holder = f"worker-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-worker")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                wait = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification worker step failed")
                wait = 1.0
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()

    async def step(self) -> float:
        """Run one batch if one is ready; return how long to wait before looking again."""
        now = self.clock()
        ready, earliest = await self.store.due(now)
        oldest = now if earliest is None else earliest
        if ready and (ready >= self.batch_size or now - oldest >= self.batch_timeout_ms):
            claimed = await self.run_batch()
            # Nothing claimed: another worker took them; look again after a timeout.
            return 0.0 if claimed else self.batch_timeout_ms / 1000
        if earliest is None:
            return self.batch_timeout_ms / 1000
        flush_at = earliest + self.batch_timeout_ms
        return min(self.batch_timeout_ms, max(10, flush_at - now)) / 1000

    async def run_batch(self) -> int:
        """Claim due jobs and hand their emails to the queue: one transaction for every new
        email of the batch, one for every job's outcome (a commit each on SQLite, where a
        pair per job bound the pipeline). A job's failure is still that job's alone."""
        now = self.clock()
        jobs = await self.store.claim(self.holder, now, LEASE_MS, max(self.batch_size, CLAIM_MAX))
        if not jobs:
            return 0
        profiles = await self.users.get_many([j.user_id for j in jobs])
        plans = await asyncio.gather(
            *(self._plan(job, profiles.get(job.user_id)) for job in jobs),
            return_exceptions=True,
        )
        finished: list[FinishedJob] = []
        failed: list[tuple[JobRow, BaseException]] = []
        sending: list[tuple[JobRow, _Send]] = []
        for job, plan in zip(jobs, plans, strict=True):
            if isinstance(plan, FinishedJob):
                finished.append(plan)
            elif isinstance(plan, BaseException):
                failed.append((job, plan))
            else:
                sending.append((job, plan))
        if sending:
            try:
                results = await self.email.submit_internal_many([s.email for _, s in sending])
            except Exception as exc:
                # Nothing of the batch was stored: every job is retried, and the dedupe
                # keys make that harmless if it was after all.
                failed.extend((job, exc) for job, _ in sending)
            else:
                for (job, send), result in zip(sending, results, strict=True):
                    finished.append(_outcome(job, send.notification_ids, result))
        self.email.flush()
        for job, error in failed:
            if (last := await self._retry(job, error)) is not None:
                finished.append(last)
        # A crash before this commit leaves the jobs leased: they are claimed again after
        # LEASE_MS and their dedupe keys give back the emails stored above.
        await self.store.finish_jobs(finished, self.clock())
        return len(jobs)

    async def _plan(self, job: JobRow, profile: Any) -> FinishedJob | _Send:
        """The job's email, or how the job ends without one."""
        ids = [job.notification_id] if job.notification_id else []
        data = camel_case_data(job.template, dict(job.data))
        if job.category == FOLD_CATEGORY:
            folded = await self.store.take_folded(job.user_id, job.id)
            if not folded:
                return FinishedJob(job.id, "skipped", "nothing folded", [], "")
            ids = [n.id for n in folded]
            data["items"] = digest_items(folded[:MAX_LISTED])
        email = profile.email if profile is not None else None
        if not email:
            # Recorded, not retried: the address may be set later, this email is not waited for.
            return FinishedJob(job.id, "skipped", "no email address", ids, "skipped_no_address")
        data["name"] = (profile.name if profile is not None else None) or "there"
        request = InternalEmail(
            to=email,
            template=job.template,
            data=data,
            category=job.category,
            dedupe_key=job.dedupe_key,
            locale=profile.locale,
            # Critical mail carries no unsubscribe link; the rest turns its category off.
            unsubscribe=(
                Target(u=job.user_id, c=job.category)
                if job.category and not is_critical(job.category)
                else None
            ),
        )
        return _Send(request, ids)

    async def _retry(self, job: JobRow, error: BaseException) -> FinishedJob | None:
        """Schedule the job again with backoff; after MAX_ATTEMPTS, its failed outcome."""
        attempts = job.attempts + 1
        now = self.clock()
        if attempts >= MAX_ATTEMPTS:
            log.error("notification job %s failed for good: %r", job.id, error)
            ids = [job.notification_id] if job.notification_id else []
            return FinishedJob(job.id, "failed", repr(error)[:500], ids, "failed")
        delay = min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempts - 1))
        log.warning("notification job %s attempt %d failed: %r", job.id, attempts, error)
        await self.store.retry_job(job.id, attempts, now + delay, repr(error), now)
        return None


@dataclass(frozen=True, slots=True)
class _Send:
    email: InternalEmail
    notification_ids: list[str]


def _outcome(job: JobRow, notification_ids: list[str], result: str | Invalid) -> FinishedJob:
    if isinstance(result, Invalid):
        # A refused address or template: retrying cannot help.
        return FinishedJob(job.id, "failed", result.message, notification_ids, "failed")
    return FinishedJob(job.id, "sent", result, notification_ids, "sent")
