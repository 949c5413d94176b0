"""Amazon SNS messages carrying SES events: verify the signature, then normalize.

Trust comes from the signing certificate, fetched only over https from a host
matching ``cert_host_pattern`` (AWS's own regional SNS endpoints by default) at a
``/SimpleNotificationService-<hex>.pem`` path. The fetch happens before the
signature can be checked, so anyone can make us fetch: it is bounded in time, size
and concurrency, done once per URL at a time, and its result is cached.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections import OrderedDict
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

# sns.<region>.amazonaws.com(.cn): the region label is pinned (us-east-1, eu-west-2,
# us-gov-west-1, cn-north-1, ...) so that S3 bucket hosts such as sns.s3.amazonaws.com,
# whose owner could serve any certificate, never match.
DEFAULT_CERT_HOST_PATTERN = r"sns\.[a-z]{2}(?:-[a-z]+)+-[0-9]+\.amazonaws\.com(?:\.cn)?"
CERT_PATH = re.compile(r"/SimpleNotificationService-[0-9a-fA-F]+\.pem")
# Signing certificates rotate rarely; a handful of topics and regions fit easily, and an
# attacker varying the URL can only evict, never grow the cache.
CERT_CACHE_SIZE = 16
# A real SNS signing certificate is about 2 KiB.
CERT_MAX_BYTES = 16 * 1024
# The whole fetch (connect, TLS, headers, body), not one read: a slow drip cannot hold it.
CERT_FETCH_TIMEOUT = 5.0
# Fetches in flight at once, across every URL.
CERT_FETCH_CONCURRENCY = 4

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
    """Downloads PEM certificates with httpx and keeps the most recently used few.

    Concurrent requests for one URL share one fetch; at most CERT_FETCH_CONCURRENCY
    fetches run at once; each is cut off after CERT_FETCH_TIMEOUT seconds or
    CERT_MAX_BYTES bytes, counted while streaming.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        cache_size: int = CERT_CACHE_SIZE,
        max_bytes: int = CERT_MAX_BYTES,
        timeout: float = CERT_FETCH_TIMEOUT,
        concurrency: int = CERT_FETCH_CONCURRENCY,
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._pending: dict[str, asyncio.Task[bytes]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._cache_size = cache_size
        self._max_bytes = max_bytes
        self._timeout = timeout

    async def __call__(self, url: str) -> bytes:
        cached = self._cache.get(url)
        if cached is not None:
            self._cache.move_to_end(url)
            return cached
        task = self._pending.get(url)
        if task is None:
            task = asyncio.create_task(self._fetch(url), name="sns-certificate-fetch")
            self._pending[url] = task
            task.add_done_callback(lambda _: self._pending.pop(url, None))
        # Shielded: one waiter giving up (client gone) does not cancel the others' fetch.
        return await asyncio.shield(task)

    async def _fetch(self, url: str) -> bytes:
        async with self._slots, asyncio.timeout(self._timeout):
            async with self._client.stream("GET", url) as response:
                response.raise_for_status()
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise WebhookError(
                            f"SNS signing certificate larger than {self._max_bytes} bytes"
                        )
        pem = bytes(body)
        self._cache[url] = pem
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return pem

    async def aclose(self) -> None:
        await self._client.aclose()


def certificate_url_allowed(url: str, host_pattern: re.Pattern[str]) -> bool:
    """https, an SNS host, the SNS certificate path, and nothing else in the URL."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname or ""
        username, password = parts.username, parts.password
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and host_pattern.fullmatch(hostname) is not None
        and username is None
        and password is None
        and not parts.query
        and not parts.fragment
        and CERT_PATH.fullmatch(parts.path) is not None
    )


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
        # Checked before any request: an attacker-chosen URL would let them sign anything.
        if not certificate_url_allowed(url, self._host):
            raise WebhookError(f"SNS signing certificate URL not allowed: {url}")
        try:
            certificate = x509.load_pem_x509_certificate(await self._fetch(url))
        except (ValueError, httpx.HTTPError, TimeoutError) as exc:
            raise WebhookError(
                f"cannot load SNS signing certificate ({type(exc).__name__})"
            ) from exc
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
