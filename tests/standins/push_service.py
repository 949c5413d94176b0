"""A push service stand-in (RFC 8030), a real HTTP server on loopback, and browsers for it.

It does what a push service and a browser do between them: each `Browser` owns a P-256
key pair and an auth secret, as `PushManager.subscribe` makes them, and an endpoint URL
on this server. A push is accepted only if its VAPID JWT (RFC 8292) is signed by the
application server key the browser subscribed with, for this origin, not expired; its
body is then decrypted (RFC 8291, aes128gcm) with the browser's private key and kept.
Answers can be scripted per browser (410, 429 with Retry-After, 500, ...).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Push:
    browser: str
    headers: dict[str, str]
    payload: dict[str, Any]
    at: float


@dataclass
class Browser:
    """One browser's subscription: what `PushSubscription.toJSON()` would give."""

    token: str
    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def subscription(self, user_agent: str | None = None) -> dict[str, Any]:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        body: dict[str, Any] = {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }
        if user_agent is not None:
            body["userAgent"] = user_agent
        return body


class PushServiceStandin:
    def __init__(self, application_server_key: str) -> None:
        self.application_server_key = application_server_key
        self.pushes: list[Push] = []
        self.refused: list[str] = []
        self.browsers: dict[str, Browser] = {}
        self._scripts: dict[str, deque[tuple[int, dict[str, str]]]] = {}
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = standin._handle(self.path, headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def browser(self) -> Browser:
        token = secrets.token_urlsafe(12)
        made = Browser(token, f"{self.origin}/push/{token}")
        with self._lock:
            self.browsers[token] = made
        return made

    def answer(self, browser: Browser, status: int, **headers: str) -> None:
        """The browser's next push gets this answer (after it was checked and decrypted)."""
        with self._lock:
            self._scripts.setdefault(browser.token, deque()).append((status, headers))

    def received(self, browser: Browser | None = None) -> list[Push]:
        with self._lock:
            return [p for p in self.pushes if browser is None or p.browser == browser.token]

    def _handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        token = path.rsplit("/", 1)[-1]
        with self._lock:
            browser = self.browsers.get(token)
        if browser is None or not path.startswith("/push/"):
            return 404, {}
        problem = self._check_vapid(headers.get("authorization", ""))
        if problem is None and headers.get("content-encoding") != "aes128gcm":
            problem = f"content-encoding {headers.get('content-encoding')!r}"
        if problem is None and not headers.get("ttl", "").isdigit():
            problem = "no TTL header"
        if problem is None and len(body) > 4096:
            return 413, {}
        payload: dict[str, Any] = {}
        if problem is None:
            try:
                plain = http_ece.decrypt(
                    body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
                )
                payload = json.loads(plain)
            except Exception as exc:
                problem = f"cannot decrypt: {exc!r}"
        with self._lock:
            if problem is not None:
                self.refused.append(problem)
                return 400 if "decrypt" in problem else 401, {}
            self.pushes.append(Push(token, headers, payload, time.time()))
            script = self._scripts.get(token)
            if script:
                return script.popleft()
        return 201, {}

    def _check_vapid(self, authorization: str) -> str | None:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return f"authorization scheme {scheme!r}"
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if parts.get("k") != self.application_server_key:
            return "k is not the application server key the browser subscribed with"
        point = unb64url(parts["k"])
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        try:
            claims = jwt.decode(
                parts.get("t", ""),
                key,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return f"bad JWT: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return "exp more than 24 hours ahead"
        if not str(claims["sub"]).startswith(("mailto:", "https://")):
            return "sub is not mailto: or https:"
        return None

    def __enter__(self) -> PushServiceStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
