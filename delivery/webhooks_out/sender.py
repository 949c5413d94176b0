"""Delivers the webhook outbox: claim due deliveries, sign, POST, record, retry later.

At least once: a delivery stays pending until an endpoint answers 2xx, and every retry
carries the same `webhook-id` (the event id), so receivers can drop duplicates. Retries
back off exponentially with jitter, from WEBHOOK_RETRY_BASE up to WEBHOOK_RETRY_CAP; an
endpoint that has failed for WEBHOOK_DISABLE_AFTER seconds is disabled (its pending
deliveries wait until an admin enables it again) and the users in ADMIN_USER_IDS are
notified (`DisabledAlert`, satisfied by delivery.notifications.alerts). Ordering per
endpoint is not promised: a delivery that fails is overtaken by later ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import httpx

from base.backoff import backoff
from base.failures import LoopFailures
from base.periodic import Periodic
from delivery.webhooks_out import signing, targets
from storage.db import DatabaseUnavailable
from storage.webhooks import Due, WebhookStore

log = logging.getLogger("pitchey.webhooks_out")

# What a receiver may answer before we stop reading: only the status matters.
READ_LIMIT = 64 * 1024
# Attempts and delivered events are kept this long for GET .../deliveries.
KEEP_MS = 7 * 24 * 3600 * 1000
_PURGE_EVERY = 3600.0


class DisabledAlert(Protocol):
    async def endpoint_disabled(self, endpoint_id: str, url: str, failing_days: float) -> None:
        """Tell the people running the platform that an endpoint was disabled."""
        ...


def _now_ms() -> int:
    return int(time.time() * 1000)


class WebhookSender:
    def __init__(
        self,
        store: WebhookStore,
        *,
        batch_size: int,
        batch_timeout: float,
        retry_base: float,
        retry_cap: float,
        disable_after: float,
        timeout: float,
        allow_private: bool,
        alerts: DisabledAlert | None = None,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.batch_size = batch_size
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.disable_after_ms = int(disable_after * 1000)
        self.timeout = timeout
        self.allow_private = allow_private
        # A claim outlives the slowest attempt; a worker that dies frees its claims then.
        self.lease_ms = int((timeout * 2 + 30) * 1000)
        self._failures = LoopFailures(log, "webhook sender", DatabaseUnavailable)
        self._periodic = Periodic(
            self._round, batch_timeout, "webhooks-out", on_failure=self._failures
        )
        self._client: httpx.AsyncClient | None = None
        self._purged_at = 0.0

    def start(self) -> None:
        # No redirects (a 3xx is a failure: following one would skip the address check)
        # and no proxy settings from the environment.
        self._client = httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False, trust_env=False
        )
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _round(self) -> None:
        claimed = await self.store.claim(_now_ms(), self.batch_size, self.lease_ms)
        self._failures.succeeded()
        if claimed:
            await asyncio.gather(*(self._deliver(due) for due in claimed))
        await self._purge()
        if len(claimed) >= self.batch_size:
            # A full batch: more may be due, so the next round starts at once.
            self._periodic.wake()

    async def _purge(self) -> None:
        if time.monotonic() - self._purged_at >= _PURGE_EVERY:
            self._purged_at = time.monotonic()
            await self.store.purge(_now_ms() - KEEP_MS)

    async def _deliver(self, due: Due) -> None:
        started = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            code = await self._post(due)
            if not 200 <= code < 300:
                error = f"answered {code}"
        except targets.TargetRefused as exc:
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        ok = error is None
        now = _now_ms()
        retry_at = now + int(backoff(due.attempt, self.retry_base, self.retry_cap) * 1000)
        duration = int((time.monotonic() - started) * 1000)
        disabled = await self.store.finish(
            due, now, ok, code, error, duration, retry_at, self.disable_after_ms
        )
        if disabled:
            log.warning("webhook endpoint %s disabled after failing too long", due.endpoint_id)
            if self.alerts is not None:
                try:
                    await self.alerts.endpoint_disabled(
                        due.endpoint_id, due.url, round(self.disable_after_ms / 86_400_000, 2)
                    )
                except Exception:
                    # Disabled and logged either way; the alert is a courtesy on top.
                    log.exception("alert for disabled webhook %s failed", due.endpoint_id)

    async def _post(self, due: Due) -> int:
        assert self._client is not None
        target = targets.parse(due.url)
        address = await targets.resolve(target, self.allow_private)
        host = f"[{address}]" if address.version == 6 else str(address)
        # Connect to the checked address; the Host header and TLS name stay the URL's.
        url = f"{target.scheme}://{host}:{target.port}{target.path}"
        default_port = 443 if target.scheme == "https" else 80
        headers = signing.headers(due.secrets, due.event_id, int(time.time()), due.body)
        name = f"[{target.host}]" if ":" in target.host else target.host
        headers["host"] = name if target.port == default_port else f"{name}:{target.port}"
        headers["user-agent"] = "pitchey-comms-webhooks/1"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        async with self._client.stream(
            "POST", url, content=due.body, headers=headers, extensions=extensions
        ) as response:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= READ_LIMIT:
                    break
            return response.status_code
