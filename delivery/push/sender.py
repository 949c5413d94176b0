"""Delivers the push outbox: claim due pushes, encrypt, POST to the push service, record.

A push leaves the outbox when the push service takes it (2xx), when it says the
subscription is gone (404, 410: the subscription is deleted with its other pushes), when
it refuses it for good (another 4xx), or when its TTL has passed. 429, 5xx and network
errors retry with backoff from PUSH_RETRY_BASE, or after Retry-After when the service
says how long. Each push is handled on its own: one bad endpoint cannot stall the others.
The request goes to the address that was checked (as for webhooks out), so a
subscription cannot point the service at its own network.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import uuid
from collections.abc import Callable

import httpx

from base.backoff import backoff
from base.failures import LoopFailures
from base.periodic import Periodic
from delivery.webhooks_out import targets
from storage.db import DatabaseUnavailable
from storage.push import DuePush, PushStore

from .encryption import encrypt
from .vapid import VapidSigner

log = logging.getLogger("pitchey.push")

# Pushes sent at once per process; push services answer in tens of milliseconds.
BATCH_SIZE = 50
# Retries double up to an hour; a push older than its TTL is dropped before that anyway.
RETRY_CAP = 3600.0
MAX_ATTEMPTS = 10
# A Retry-After longer than this is capped: the TTL decides whether the push is still wanted.
RETRY_AFTER_CAP = 6 * 3600.0
TIMEOUT = 10.0
READ_LIMIT = 16 * 1024


def _now_ms() -> int:
    return int(time.time() * 1000)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class PushSender:
    def __init__(
        self,
        store: PushStore,
        signer: VapidSigner,
        *,
        batch_timeout: float,
        retry_base: float,
        allow_private: bool,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.store = store
        self.signer = signer
        self.retry_base = retry_base
        self.allow_private = allow_private
        self.clock = clock
        self.lease_ms = int((TIMEOUT * 2 + 30) * 1000)
        self.holder = f"push-{uuid.uuid4()}"
        self._failures = LoopFailures(log, "push sender", DatabaseUnavailable)
        self._periodic = Periodic(
            self._round, batch_timeout, "push-sender", on_failure=self._failures
        )
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        # No redirects (one would skip the address check), no proxies from the environment.
        self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
        self._periodic.start()

    def wake(self) -> None:
        self._periodic.wake()

    async def stop(self) -> None:
        await self._periodic.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _round(self) -> None:
        if await self.step() >= BATCH_SIZE:
            # A full batch: more may be due, so the next round starts at once.
            self._periodic.wake()

    async def step(self) -> int:
        claimed = await self.store.claim(self.holder, self.clock(), BATCH_SIZE, self.lease_ms)
        self._failures.succeeded()
        if claimed:
            await asyncio.gather(*(self._deliver(push) for push in claimed))
        return len(claimed)

    async def _deliver(self, push: DuePush) -> None:
        try:
            await self._attempt(push)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Never lose a push to our own bug: it is retried like a failed send.
            log.exception("push %s failed unexpectedly", push.id)
            await self._retry(push, None, "internal error")

    async def _attempt(self, push: DuePush) -> None:
        now = self.clock()
        if now > push.expires_at:
            await self.store.done(push.id)
            return
        try:
            response = await self._post(push)
        except targets.TargetRefused as exc:
            log.warning("push subscription %s refused: %s", push.subscription_id, exc)
            await self.store.done(push.id)
            return
        except httpx.HTTPError as exc:
            await self._retry(push, None, f"{type(exc).__name__}: {exc}")
            return
        status, wait = response
        if 200 <= status < 300:
            await self.store.done(push.id)
        elif status in (404, 410):
            # The browser unsubscribed or the subscription expired: it will never work again.
            log.info("push subscription %s is gone (%d): deleted", push.subscription_id, status)
            await self.store.gone(push.subscription_id)
        elif status == 429 or status >= 500:
            await self._retry(push, wait, f"answered {status}")
        else:
            # 400, 401, 403 (VAPID key mismatch), 413: sending it again cannot help.
            log.warning("push %s refused by the push service: %d", push.id, status)
            await self.store.done(push.id)

    async def _retry(self, push: DuePush, wait: float | None, error: str) -> None:
        attempts = push.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.warning("push %s dropped after %d attempts: %s", push.id, attempts, error)
            await self.store.done(push.id)
            return
        delay = backoff(attempts, self.retry_base, RETRY_CAP)
        if wait is not None:
            delay = max(delay, min(wait, RETRY_AFTER_CAP))
        await self.store.retry(push.id, attempts, self.clock() + int(delay * 1000), error)

    async def _post(self, push: DuePush) -> tuple[int, float | None]:
        assert self._client is not None
        target = targets.parse(push.endpoint)
        address = await targets.resolve(target, self.allow_private)
        default_port = 443 if target.scheme == "https" else 80
        name = f"[{target.host}]" if ":" in target.host else target.host
        origin_host = name if target.port == default_port else f"{name}:{target.port}"
        host = f"[{address}]" if address.version == 6 else str(address)
        url = f"{target.scheme}://{host}:{target.port}{target.path}"
        body = encrypt(push.payload.encode(), push.p256dh, push.auth)
        headers = {
            "host": origin_host,
            "authorization": self.signer.authorization(f"{target.scheme}://{origin_host}"),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "ttl": str(push.ttl),
            "urgency": push.urgency,
            "user-agent": "pitchey-comms-push/1",
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        async with self._client.stream(
            "POST", url, content=body, headers=headers, extensions=extensions
        ) as response:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= READ_LIMIT:
                    break
            return response.status_code, retry_after(response.headers.get("retry-after"))
