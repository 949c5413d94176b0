"""The email worker: claim due emails in batches, send them, record what happened.

One loop claims a batch (``EMAIL_BATCH_SIZE``, or whatever is due once
``EMAIL_BATCH_TIMEOUT`` passes, or at once when this process enqueued a full
batch) from the main lane first, then from the bulk lane (unread-message and
digest emails), each lane paced by its own send budget so bulk mail never
delays an NDA or investment email; each email is sent in its own task under a semaphore
(``EMAIL_SEND_CONCURRENCY``), and outcomes are written back in group commits.
Each email's failure is caught on its own: one bad email never fails its batch.

Delivery is at least once. An email is sent twice only if the process dies
between the provider's 202 and the outcome's commit (its lease then expires and
the history says ``lease_expired``), or after an ambiguous timeout, which is
retried on the same provider and recorded as ``ambiguous_timeout``.

Attachments given by stored id are read from the email bucket just before the
send (providers take whole messages, so they are held in memory for it). An
email too large for the chosen provider ends ``failed`` without being sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from delivery import metrics
from delivery.email import without_suppressed
from delivery.failover import ProviderRouter
from delivery.providers.base import (
    MAX_MESSAGE_BYTES,
    Attachment,
    EmailProvider,
    ErrorKind,
    OutgoingEmail,
    ProviderError,
    encoded_size,
)
from schemas.delivery import DeliveryStatus
from state.ratelimit import RateLimiter
from storage.email import LANE_BULK, LANE_MAIN, LANES, Claimed, EmailStore, Outcome
from storage.messages import now_ms

if TYPE_CHECKING:
    from attachments.service import EmailBucket

log = logging.getLogger("pitchey.email.worker")
S = DeliveryStatus
_decoder = msgspec.json.Decoder(OutgoingEmail)
# A graceful stop waits this long for sends in flight, then releases their claims.
STOP_TIMEOUT = 10.0
# A database error in the claim loop is retried after this pause rather than spinning.
ERROR_PAUSE = 1.0
# Idempotency keys must answer for at least 24 h; they are purged a little later.
IDEMPOTENCY_KEEP_MS = 25 * 3600 * 1000
PURGE_EVERY = 3600.0
# Errors on the same provider are kept sticky: retrying elsewhere would risk a duplicate
# (ambiguous) or ignore what the provider told us (rate limited), or is the switch (auth).
_STICKY = frozenset({ErrorKind.AMBIGUOUS, ErrorKind.RATE_LIMITED, ErrorKind.AUTH})


class Unsendable(Exception):
    """This email can never be sent as it is (too large, attachment gone): final."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class EmailWorker:
    def __init__(
        self,
        *,
        store: EmailStore,
        router: ProviderRouter,
        limiter: RateLimiter,
        batch_size: int,
        batch_timeout: float,
        concurrency: int,
        claim_ttl: float,
        per_minute: int = 0,
        per_hour: int = 0,
        bulk_per_minute: int = 0,
        bulk_per_hour: int = 0,
        ses_sender: tuple[str, str | None] | None = None,
        attachments: EmailBucket | None = None,
    ) -> None:
        self.id = worker_id()
        self.store = store
        self.router = router
        self.limiter = limiter
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.claim_ttl = claim_ttl
        self.per_minute = per_minute
        self.per_hour = per_hour
        # (per minute, per hour) for each lane; 0 means no limit.
        self._budgets = {
            LANE_MAIN: (per_minute, per_hour),
            LANE_BULK: (bulk_per_minute, bulk_per_hour),
        }
        self.ses_sender = ses_sender
        self.attachments = attachments
        # Claimed but unfinished emails are bounded (one batch waits while the previous
        # ones send), so leases do not expire in the queue for a send slot.
        self.capacity = batch_size + concurrency
        self._providers = {p.name: p for p in (router.primary, router.fallback) if p is not None}
        self._send_slots = asyncio.Semaphore(concurrency)
        self._pending = 0
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._outcomes: list[Outcome] = []
        self._flush = asyncio.Event()
        # Per lane: when its budget allows the next send (0: not paced).
        self._paced_until = dict.fromkeys(LANES, 0.0)
        self._purged_at = 0.0
        self._loop: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="email-worker")
        self._flusher = asyncio.create_task(self._flush_loop(), name="email-outcomes")

    def notify(self, count: int, flush: bool = False) -> None:
        """Emails were enqueued in this process: wake up once a full batch waits, or at once
        with `flush` (the caller batched them itself)."""
        self._pending += count
        if self._pending >= self.batch_size or (flush and self._pending):
            self._wake.set()

    async def stop(self) -> None:
        # 1. Stop claiming.
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        # 2. Let sends in flight finish, for a bounded time.
        tasks = list(self._inflight.values())
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        # 3. Cancel the rest and give their claims back: they are sent after a restart.
        for email_id, task in list(self._inflight.items()):
            task.cancel()
            self._outcomes.append(
                _release(email_id, "released", 0, "stopped while sending; it may have been sent")
            )
        # 4. Write every outcome, then stop the writer and close provider clients.
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._write_outcomes()
        for provider in self._providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()

    # ---- claiming ------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            room = self.capacity - len(self._inflight)
            # Claim whole batches: a claim is a write transaction, one per email would
            # make the database the bottleneck.
            if room < self.batch_size:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                self._pending = 0
                busy = await self._claim_lanes(room)
            except Exception:
                log.exception("claiming emails failed")
                await asyncio.sleep(ERROR_PAUSE)
                continue
            if not busy:
                await self._idle()

    async def _claim_lanes(self, room: int) -> bool:
        """Claim from the main lane, then (with room left) from the bulk lane; a lane over
        its own budget is skipped until its window allows. True if more may be waiting."""
        busy = False
        for lane in LANES:
            paced = self._paced_until[lane]
            if paced > time.monotonic() or room <= 0:
                continue
            # After a rate-limit denial claim one at a time, not a batch to put back.
            want = 1 if paced else min(self.batch_size, room)
            batch = await self.store.claim(self.id, want, self.claim_ttl, lane)
            if not batch:
                # Nothing waits in this lane: the next claim may take a whole batch again.
                self._paced_until[lane] = 0.0
                continue
            await self._dispatch(batch, lane)
            room -= len(batch)
            if len(batch) == want:
                busy = True
                if lane == LANE_MAIN and not self._paced_until[lane]:
                    # A full main batch: more critical mail may wait; bulk goes after it.
                    return True
        return busy

    async def _idle(self) -> None:
        """Wait for a full batch from this process, the batch timeout, or the next retry."""
        timeout = self.batch_timeout
        # A paced lane may claim again when its window allows, without a wake-up.
        now = time.monotonic()
        paced = [until for until in self._paced_until.values() if until > now]
        if paced:
            timeout = min(timeout, min(paced) - now)
        with contextlib.suppress(Exception):
            due = await self.store.next_due(after=now_ms())
            if due is not None:
                timeout = min(timeout, max(0.0, (due - now_ms()) / 1000))
            await self._purge()
        self._wake.clear()
        if self._pending >= self.batch_size:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _purge(self) -> None:
        if time.monotonic() - self._purged_at >= PURGE_EVERY:
            self._purged_at = time.monotonic()
            await self.store.purge_idempotency(now_ms() - IDEMPOTENCY_KEEP_MS)

    async def _dispatch(self, batch: Sequence[Claimed], lane: str = LANE_MAIN) -> None:
        for index, claimed in enumerate(batch):
            wait = await self._permit(lane)
            if wait > 0:
                # Over the send rate: the rest wait in the queue, never dropped.
                self._paced_until[lane] = time.monotonic() + wait
                later = now_ms() + int(wait * 1000)
                self._outcomes.extend(_release(c.id, "rate_limited", later) for c in batch[index:])
                self._flush.set()
                log.info("email rate limit (%s lane) reached; next send in %.1fs", lane, wait)
                return
            self._paced_until[lane] = 0.0
            task = asyncio.create_task(self._send_one(claimed), name=f"email-{claimed.id}")
            self._inflight[claimed.id] = task

    async def _permit(self, lane: str) -> float:
        """0 if one more email of `lane` may be sent now, else seconds to wait (limits shared
        via the service's rate limiter, so across processes with Redis). Each lane has its
        own budget: bulk mail never spends what critical mail needs."""
        per_minute, per_hour = self._budgets[lane]
        prefix = "email:send" if lane == LANE_MAIN else f"email:send:{lane}"
        if per_minute:
            wait = await self.limiter.hit(f"{prefix}:minute", per_minute, 60.0)
            if wait > 0:
                return wait
        if per_hour:
            return await self.limiter.hit(f"{prefix}:hour", per_hour, 3600.0)
        return 0.0

    # ---- sending -------------------------------------------------------------------

    async def _send_one(self, claimed: Claimed) -> None:
        try:
            async with self._send_slots:
                try:
                    outcome = await self._attempt(claimed)
                except Exception as exc:
                    log.exception("email %s: unexpected error", claimed.id)
                    delay = self.router.next_delay(claimed.attempts)
                    outcome = Outcome(
                        id=claimed.id,
                        status=S.QUEUED,
                        event="retry",
                        detail=f"internal error: {exc!r}",
                        next_attempt_at=now_ms() + int(delay * 1000),
                    )
            self._outcomes.append(outcome)
            metrics.provider_outcomes.labels(outcome.provider or "none", outcome.event).inc()
            self._flush.set()
        finally:
            self._inflight.pop(claimed.id, None)
            self._slot_free.set()

    async def _attempt(self, claimed: Claimed) -> Outcome:
        email = _decoder.decode(claimed.payload)
        addresses = [a.email for a in (*email.to, *email.cc, *email.bcc)]
        email, note = without_suppressed(email, await self.store.suppressed(addresses))
        if not email.to:
            return Outcome(id=claimed.id, status=S.SUPPRESSED, event="suppressed", detail=note)
        provider = self._providers.get(claimed.retry_provider or "") or self.router.choose()
        try:
            outgoing = await self._with_attachments(email, provider.name)
            result = await provider.send(self._for_provider(outgoing, provider))
        except ProviderError as error:
            return self._after_failure(claimed, provider, error)
        except Unsendable as exc:
            detail = f"not sent: {exc}"
            return Outcome(
                id=claimed.id,
                status=S.FAILED,
                event="failed",
                detail=detail,
                provider=provider.name,
            )
        self.router.on_success(provider)
        return Outcome(
            id=claimed.id,
            status=S.SENT,
            event="sent",
            detail=f"accepted by {provider.name}" + (f"; {note}" if note else ""),
            provider=provider.name,
            provider_message_id=result.provider_message_id,
        )

    async def _with_attachments(self, email: OutgoingEmail, provider: str) -> OutgoingEmail:
        """The email with stored attachments' bytes, once it is known to fit `provider`."""
        if not email.attachments:
            return email
        limit = MAX_MESSAGE_BYTES.get(provider)
        size = encoded_size(email, provider)
        if limit is not None and size > limit:
            raise Unsendable(
                f"the email would be about {size} bytes as {provider} counts it "
                f"(attachments grow by 4/3 in base64); {provider} accepts at most {limit}"
            )
        if all(a.stored_id is None for a in email.attachments):
            return email
        resolved: list[Attachment] = []
        for attachment in email.attachments:
            if attachment.stored_id is None:
                resolved.append(attachment)
                continue
            found = None
            if self.attachments is not None:
                found = await self.attachments.read(attachment.stored_id)
            if found is None:
                raise Unsendable(f"attachment {attachment.stored_id} is no longer stored")
            resolved.append(Attachment(attachment.filename, attachment.content_type, found[1]))
        return msgspec.structs.replace(email, attachments=resolved)

    def _for_provider(self, email: OutgoingEmail, provider: EmailProvider) -> OutgoingEmail:
        if provider.name == "ses" and self.ses_sender is not None:
            sender, name = self.ses_sender
            return msgspec.structs.replace(email, from_email=sender, from_name=name)
        return email

    def _after_failure(
        self, claimed: Claimed, provider: EmailProvider, error: ProviderError
    ) -> Outcome:
        decision = self.router.on_failure(provider, error, claimed.attempts)
        if error.kind is ErrorKind.AUTH:
            log.error("email provider %s refused our credentials: %s", provider.name, error)
        if decision.provider is None:
            return Outcome(
                id=claimed.id,
                status=S.FAILED,
                event="failed",
                detail=decision.reason,
                provider=provider.name,
            )
        event = "ambiguous_timeout" if error.kind is ErrorKind.AMBIGUOUS else "retry"
        detail = f"{provider.name} {error.kind}: {error.message}; retry on {decision.provider.name}"
        if error.kind is ErrorKind.AMBIGUOUS:
            detail += " (it may have been sent: a duplicate is possible)"
        return Outcome(
            id=claimed.id,
            status=S.QUEUED,
            event=event,
            detail=f"{detail} in {decision.delay:.2f}s",
            provider=provider.name,
            next_attempt_at=now_ms() + int(decision.delay * 1000),
            retry_provider=decision.provider.name if error.kind in _STICKY else None,
        )

    # ---- recording -----------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush.wait()
            self._flush.clear()
            await self._write_outcomes()

    async def _write_outcomes(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        try:
            await self.store.record(self.id, outcomes)
        except Exception:
            # Kept for the next flush; if the process dies first, the leases expire and the
            # emails are retried (the crash window).
            log.exception("recording %d email outcomes failed", len(outcomes))
            self._outcomes[:0] = outcomes
            await asyncio.sleep(ERROR_PAUSE)
            self._flush.set()


def _release(email_id: str, event: str, at: int, detail: str | None = None) -> Outcome:
    """Back to the queue without counting an attempt."""
    return Outcome(
        id=email_id,
        status=S.QUEUED,
        event=event,
        detail=detail,
        next_attempt_at=at,
        refund_attempt=True,
    )
