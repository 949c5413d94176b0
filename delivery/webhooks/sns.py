"""Amazon SNS messages carrying SES events: verify the signature, then normalize.

Trust comes from the signing certificate, fetched only over https from a host
matching ``cert_host_pattern`` (AWS's own SNS endpoints by default).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from delivery.webhooks.events import MalformedWebhook, WebhookError

DEFAULT_CERT_HOST_PATTERN = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"
# Signing certificates rotate rarely; a handful of topics and regions fit easily.
CERT_CACHE_SIZE = 32

CertificateFetcher = Callable[[str], Awaitable[bytes]]

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsMessage(msgspec.Struct, frozen=True, kw_only=True):
    Type: str
    MessageId: str
    TopicArn: str
    Message: str
    Timestamp: str
    Signature: str
    SignatureVersion: str
    SigningCertURL: str
    Subject: str | None = None
    SubscribeURL: str | None = None
    Token: str | None = None

    @property
    def is_subscription(self) -> bool:
        """A subscription (un)confirmation: the caller confirms by GET on SubscribeURL."""
        return self.Type in ("SubscriptionConfirmation", "UnsubscribeConfirmation")


_decoder = msgspec.json.Decoder(SnsMessage)


def string_to_sign(message: SnsMessage) -> bytes:
    """SNS's canonical form: "Key\\nValue\\n" for each signed key present, in this order."""
    keys = _SUBSCRIPTION_KEYS if message.is_subscription else _NOTIFICATION_KEYS
    parts: list[str] = []
    for key in keys:
        value = getattr(message, key)
        if value is not None:
            parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode()


class HttpCertificateFetcher:
    """Downloads PEM certificates with httpx and keeps the most recent few."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self._cache: dict[str, bytes] = {}

    async def __call__(self, url: str) -> bytes:
        if url not in self._cache:
            response = await self._client.get(url)
            response.raise_for_status()
            if len(self._cache) >= CERT_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = response.content
        return self._cache[url]

    async def aclose(self) -> None:
        await self._client.aclose()


class SnsVerifier:
    def __init__(
        self,
        *,
        allowed_topic_arns: Collection[str] = (),
        cert_host_pattern: str = DEFAULT_CERT_HOST_PATTERN,
        fetch_certificate: CertificateFetcher | None = None,
    ) -> None:
        """An empty ``allowed_topic_arns`` accepts any topic (development only)."""
        self._topics = frozenset(allowed_topic_arns)
        self._host = re.compile(cert_host_pattern)
        self._fetch = fetch_certificate or HttpCertificateFetcher()

    async def verify(self, body: bytes) -> SnsMessage:
        """The verified message, or WebhookError / MalformedWebhook."""
        try:
            message = _decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise MalformedWebhook(f"SNS body: {exc}") from exc
        if self._topics and message.TopicArn not in self._topics:
            raise WebhookError(f"SNS topic not allowed: {message.TopicArn}")
        algorithm = _HASHES.get(message.SignatureVersion)
        if algorithm is None:
            raise WebhookError(f"unsupported SNS SignatureVersion {message.SignatureVersion!r}")
        key = await self._public_key(message.SigningCertURL)
        try:
            signature = base64.b64decode(message.Signature, validate=True)
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise WebhookError("invalid SNS signature") from exc
        return message

    async def _public_key(self, url: str) -> rsa.RSAPublicKey:
        parts = urlsplit(url)
        # Checked before any request: an attacker-chosen URL would let them sign anything.
        if parts.scheme != "https" or not self._host.fullmatch(parts.hostname or ""):
            raise WebhookError(f"SNS signing certificate URL not allowed: {url}")
        try:
            certificate = x509.load_pem_x509_certificate(await self._fetch(url))
        except (ValueError, httpx.HTTPError) as exc:
            raise WebhookError(f"cannot load SNS signing certificate: {exc}") from exc
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookError("SNS signing certificate does not hold an RSA key")
        return key


def decode_message_json(message: SnsMessage) -> dict[str, Any]:
    try:
        payload = msgspec.json.decode(message.Message)
    except msgspec.DecodeError as exc:
        raise MalformedWebhook(f"SNS Message is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedWebhook("SNS Message is not a JSON object")
    return payload
