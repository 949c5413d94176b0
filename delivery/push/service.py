"""The push API's logic: the public key, and a user's browser subscriptions."""

from __future__ import annotations

from collections.abc import Callable

from base.clock import iso
from base.errors import Invalid, NotFound
from delivery.webhooks_out import targets
from schemas.push import (
    PublicKey,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
)
from storage.messages import now_ms
from storage.push import PushStore

from .encryption import BadSubscriptionKeys, auth_secret, receiver_key

OFF = "web push is not configured on this server (VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY)"


class PushService:
    def __init__(
        self,
        store: PushStore,
        *,
        public_key: str | None,
        require_https: bool,
        allow_private: bool,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self._public_key = public_key
        self.require_https = require_https
        self.allow_private = allow_private
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self._public_key is not None

    def public_key(self) -> PublicKey:
        if self._public_key is None:
            raise NotFound(OFF)
        return PublicKey(public_key=self._public_key)

    async def subscribe(
        self, user_id: str, body: SubscriptionIn
    ) -> tuple[SubscriptionCreated, bool]:
        if self._public_key is None:
            raise NotFound(OFF)
        target = targets.parse(body.endpoint)
        if self.require_https and target.scheme != "https":
            raise Invalid("endpoint must be an https URL")
        # A literal private address is refused now; names are checked again at each send.
        targets.check_literal(target, self.allow_private)
        try:
            receiver_key(body.keys.p256dh)
            auth_secret(body.keys.auth)
        except BadSubscriptionKeys as exc:
            raise Invalid(str(exc)) from None
        row, created = await self.store.subscribe(
            user_id,
            body.endpoint,
            body.keys.p256dh,
            body.keys.auth,
            body.user_agent,
            self.clock(),
        )
        return SubscriptionCreated(id=row.id), created

    async def list(self, user_id: str) -> SubscriptionList:
        return SubscriptionList(
            items=[
                SubscriptionOut(
                    id=row.id,
                    endpoint=row.endpoint,
                    user_agent=row.user_agent,
                    created_at=iso(row.created_at),
                    updated_at=iso(row.updated_at),
                )
                for row in await self.store.subscriptions(user_id)
            ]
        )

    async def delete(self, user_id: str, subscription_id: str) -> None:
        if not await self.store.unsubscribe(user_id, subscription_id):
            raise NotFound("push subscription not found")
