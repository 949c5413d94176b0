"""The admin side of outgoing webhooks: endpoints, secrets, recent attempts, test events."""

from __future__ import annotations

import time
import uuid

from base.clock import iso
from base.errors import Invalid, NotFound
from delivery.webhooks_out import signing, targets
from schemas.webhooks import (
    EVENT_TYPES,
    TEST_EVENT,
    AttemptList,
    AttemptOut,
    SecretOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)
from storage.webhooks import EndpointRow, WebhookStore

# After a rotation the previous secret keeps signing this long (receivers switch over).
ROTATION_OVERLAP_MS = 24 * 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _out(row: EndpointRow) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=row.events,
        description=row.description,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        failing_since=iso(row.failing_since) if row.failing_since is not None else None,
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
    )


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise Invalid(f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return sorted(set(events))


class Webhooks:
    def __init__(self, store: WebhookStore, *, allow_private: bool) -> None:
        self.store = store
        self.allow_private = allow_private

    def _check_url(self, url: str) -> str:
        targets.check_literal(targets.parse(url), self.allow_private)
        return url

    async def _row(self, endpoint_id: str) -> EndpointRow:
        row = await self.store.get(endpoint_id)
        if row is None:
            raise NotFound("no such webhook endpoint")
        return row

    async def create(self, body: WebhookIn) -> WebhookCreated:
        url = self._check_url(body.url)
        events = _check_events(body.events)
        secret = signing.new_secret()
        row = await self.store.create(
            "ep_" + uuid.uuid4().hex, url, events, body.description, secret, _now_ms()
        )
        out = _out(row)
        return WebhookCreated(**{f: getattr(out, f) for f in out.__struct_fields__}, secret=secret)

    async def list(self) -> WebhookList:
        return WebhookList(items=[_out(row) for row in await self.store.all()])

    async def get(self, endpoint_id: str) -> WebhookOut:
        return _out(await self._row(endpoint_id))

    async def update(self, endpoint_id: str, body: WebhookPatch) -> WebhookOut:
        url = self._check_url(body.url) if body.url is not None else None
        events = _check_events(body.events) if body.events is not None else None
        changed = await self.store.update(
            endpoint_id, _now_ms(), url, events, body.enabled, body.description
        )
        if not changed:
            raise NotFound("no such webhook endpoint")
        return await self.get(endpoint_id)

    async def delete(self, endpoint_id: str) -> None:
        if not await self.store.delete(endpoint_id):
            raise NotFound("no such webhook endpoint")

    async def rotate(self, endpoint_id: str) -> SecretOut:
        secret = signing.new_secret()
        now = _now_ms()
        until = now + ROTATION_OVERLAP_MS
        if not await self.store.rotate(endpoint_id, secret, until, now):
            raise NotFound("no such webhook endpoint")
        return SecretOut(secret=secret, previous_valid_until=iso(until))

    async def deliveries(self, endpoint_id: str, limit: int) -> AttemptList:
        await self._row(endpoint_id)
        rows = await self.store.attempts(endpoint_id, limit)
        return AttemptList(
            items=[
                AttemptOut(
                    message_id=r.event_id,
                    type=r.type,
                    attempt=r.attempt,
                    at=iso(r.at),
                    ok=r.ok,
                    response_code=r.status_code,
                    error=r.error,
                    duration_ms=r.duration_ms,
                )
                for r in rows
            ]
        )

    async def test(self, endpoint_id: str) -> str:
        """Queue a `webhook.test` event for this endpoint alone, subscribed or not."""
        await self._row(endpoint_id)
        now = _now_ms()
        return await self.store.enqueue_test(
            endpoint_id, TEST_EVENT, {"endpointId": endpoint_id, "sentAt": iso(now)}, now
        )
