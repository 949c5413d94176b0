"""The push message body: JSON encrypted for one browser (RFC 8291, aes128gcm).

http_ece does the content coding; each message gets a fresh sender key and salt, as
RFC 8291 requires; the payload fits one record (delivery.push_payload keeps it small).
"""

from __future__ import annotations

import os

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from delivery.push_payload import MAX_BODY, MAX_PLAINTEXT

from .vapid import unb64url


class BadSubscriptionKeys(ValueError):
    pass


def receiver_key(p256dh: str) -> bytes:
    """The browser's public point, checked to lie on P-256 (a bad one is refused at subscribe)."""
    try:
        raw = unb64url(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise BadSubscriptionKeys("keys.p256dh is not a P-256 public key") from None
    return raw


def auth_secret(auth: str) -> bytes:
    try:
        raw = unb64url(auth)
    except ValueError:
        raise BadSubscriptionKeys("keys.auth is not base64url") from None
    if len(raw) != 16:
        raise BadSubscriptionKeys("keys.auth must be 16 bytes")
    return raw


def encrypt(plaintext: bytes, p256dh: str, auth: str) -> bytes:
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"push payload of {len(plaintext)} bytes is over {MAX_PLAINTEXT}")
    sender = ec.generate_private_key(ec.SECP256R1())
    # No key id given: http_ece puts the sender's public point there, as RFC 8291 wants.
    body: bytes = http_ece.encrypt(
        plaintext,
        salt=os.urandom(16),
        private_key=sender,
        dh=receiver_key(p256dh),
        auth_secret=auth_secret(auth),
        keyid=None,
        version="aes128gcm",
        rs=MAX_BODY,
    )
    return body
