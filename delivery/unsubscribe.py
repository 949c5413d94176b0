"""One-click unsubscribe (RFC 8058): signed tokens and the headers that carry them.

A token names either (recipient user, notification category) or, for an email sent
through the API without a user, the address itself. It is signed with HMAC-SHA256 under
a key derived from JWT_SECRET (so no new secret to manage, and a token can never pass
as a JWT or the other way round). Tokens do not expire: an unsubscribe link in an old
email must keep working, and using one again changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import quote

import msgspec

# The key is HMAC(JWT_SECRET, this label): a different purpose, a different key.
_KEY_LABEL = b"pitchey-comms email unsubscribe v1"
PATH = "/api/email/unsubscribe"
MAX_TOKEN_CHARS = 2048


class BadToken(Exception):
    pass


class Target(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """u + c: turn category c's email off for user u; e: suppress the address e."""

    u: str | None = None
    c: str | None = None
    e: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Target)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Unsubscribe:
    def __init__(self, secret: str, public_url: str) -> None:
        self._key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self.public_url = public_url.rstrip("/")

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def token(self, target: Target) -> str:
        payload = _encoder.encode(target)
        return f"{_b64(payload)}.{self._sign(payload)}"

    def url(self, target: Target) -> str:
        return f"{self.public_url}{PATH}?token={quote(self.token(target))}"

    def headers(self, url: str) -> dict[str, str]:
        return {
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    def verify(self, token: str) -> Target:
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise BadToken("the unsubscribe token is malformed")
        body, signature = token.split(".")
        try:
            payload = _unb64(body)
        except (binascii.Error, ValueError):
            raise BadToken("the unsubscribe token is malformed") from None
        if not hmac.compare_digest(self._sign(payload), signature):
            raise BadToken("the unsubscribe token is not valid")
        try:
            target = _decoder.decode(payload)
        except msgspec.DecodeError:
            raise BadToken("the unsubscribe token is malformed") from None
        if (target.u is None or target.c is None) and target.e is None:
            raise BadToken("the unsubscribe token names nothing")
        return target
