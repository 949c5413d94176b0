"""Web Push: the subscription a browser registers and the API's answers (camelCase)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

# Push service URLs are a few hundred characters (FCM's are the longest, ~200).
Endpoint = Annotated[str, Meta(min_length=8, max_length=2048)]
# base64url of the 65-byte P-256 point (87 characters unpadded) and the 16-byte auth
# secret (22); padding and a little slack allowed, nothing longer.
P256dh = Annotated[str, Meta(min_length=80, max_length=96, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]
AuthSecret = Annotated[str, Meta(min_length=16, max_length=32, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]
UserAgent = Annotated[str, Meta(max_length=512)]


class Base(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    pass


class SubscriptionKeys(Base, kw_only=True):
    p256dh: P256dh
    auth: AuthSecret


class SubscriptionIn(Base, kw_only=True):
    """What `PushSubscription.toJSON()` gives (its `expirationTime` is accepted and ignored),
    plus the user agent to tell a user's browsers apart."""

    endpoint: Endpoint
    keys: SubscriptionKeys
    user_agent: UserAgent | None = None


class SubscriptionCreated(Base, kw_only=True):
    id: str


class SubscriptionOut(Base, kw_only=True):
    id: str
    endpoint: str
    user_agent: str | None
    created_at: str
    updated_at: str


class SubscriptionList(Base, kw_only=True):
    items: list[SubscriptionOut]


class PublicKey(Base, kw_only=True):
    # The VAPID public key as `applicationServerKey` takes it (base64url, unpadded).
    public_key: str
