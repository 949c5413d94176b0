"""VAPID (RFC 8292): the application server's key pair and the signed JWT per push service.

Keys are raw, as browsers take them: the public key is the 65-byte uncompressed P-256
point `applicationServerKey` wants, the private key its 32-byte scalar, both base64url
without padding. py-vapid signs; a token is reused for an audience until an hour before
it expires, so a burst of pushes to one service costs one signature.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

# RFC 8292 allows at most 24 h; 12 h keeps a token valid across clock skew.
TOKEN_LIFETIME = 12 * 3600
# A cached token is replaced this long before it expires.
REFRESH_MARGIN = 3600


class VapidError(ValueError):
    """The configured keys or subject are not usable (the message names the variable)."""


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate() -> tuple[str, str]:
    """A new (public, private) key pair, base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(public), b64url(private)


@dataclass(frozen=True, slots=True)
class VapidConfig:
    public_key: str
    private_key: str
    subject: str


def check(config: VapidConfig) -> None:
    """Raise VapidError unless the keys form one P-256 pair and the subject is usable."""
    try:
        private = unb64url(config.private_key)
        public = unb64url(config.public_key)
    except ValueError:
        raise VapidError("VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY must be base64url") from None
    if len(private) != 32:
        raise VapidError("VAPID_PRIVATE_KEY must be the raw 32-byte private key, base64url")
    if len(public) != 65 or public[0] != 4:
        raise VapidError(
            "VAPID_PUBLIC_KEY must be the raw 65-byte uncompressed public key, base64url"
        )
    try:
        key = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
    except ValueError:
        raise VapidError("VAPID_PRIVATE_KEY is not a P-256 private key") from None
    derived = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    if derived != public:
        raise VapidError("VAPID_PUBLIC_KEY is not the public key of VAPID_PRIVATE_KEY")
    if not (config.subject.startswith("mailto:") or config.subject.startswith("https://")):
        raise VapidError("VAPID_SUBJECT must be a mailto: or https: URL")


class VapidSigner:
    def __init__(self, config: VapidConfig) -> None:
        check(config)
        self.public_key = config.public_key
        self.subject = config.subject
        self._vapid = Vapid02.from_raw(config.private_key.encode())
        self._tokens: dict[str, tuple[str, float]] = {}

    def authorization(self, audience: str) -> str:
        """The `Authorization: vapid t=...,k=...` value for a push service's origin."""
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] - REFRESH_MARGIN > now:
            return cached[0]
        expires = int(now) + TOKEN_LIFETIME
        headers = self._vapid.sign({"aud": audience, "exp": expires, "sub": self.subject})
        value: str = headers["Authorization"]
        if len(self._tokens) > 1000:
            # Audiences are a handful of push services; a flood means something is off.
            self._tokens.clear()
        self._tokens[audience] = (value, float(expires))
        return value
