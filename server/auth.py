"""HS256 bearer tokens. Claims: sub (required), exp (required), email, name, role."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import jwt

from base.errors import Forbidden, Unauthorized
from base.identity import Caller

ROLES = ("user", "service", "admin")
# Bound the cost of decoding what an anonymous client sends.
_MAX_TOKEN_CHARS = 8192
# Tokens we issue are a few hundred characters; longer ones are verified every time.
_CACHEABLE_CHARS = 1024
# A user id travels into keys, channels, logs and URLs: a narrow alphabet keeps every one of
# them unambiguous (no separators such as `|`, no spaces, no control characters).
SUB_PATTERN = re.compile(r"[A-Za-z0-9_.@:-]{1,128}")


def create_token(
    secret: str,
    user_id: str,
    *,
    role: str = "user",
    email: str | None = None,
    name: str | None = None,
    ttl: float = 3600,
) -> str:
    claims: dict[str, Any] = {"sub": user_id, "exp": int(time.time() + ttl), "role": role}
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str | None) -> Caller:
    return _verify(secret, token)[0]


def _verify(secret: str, token: str | None) -> tuple[Caller, int]:
    """The caller a token names and its `exp`; Unauthorized if it is not valid now."""
    if not token:
        raise Unauthorized("missing bearer token")
    if len(token) > _MAX_TOKEN_CHARS:
        raise Unauthorized("token too long")
    try:
        # Only HS256 is accepted: "none" and asymmetric algorithms are refused outright.
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    # PyJWT also takes "exp": "1999999999" (a string); a token shape we never issue.
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise Unauthorized("invalid token: exp must be an integer")
    sub = claims.get("sub")
    role = claims.get("role", "user")
    if not isinstance(sub, str) or SUB_PATTERN.fullmatch(sub) is None:
        raise Unauthorized(
            "invalid token: sub must be 1-128 characters of letters, digits and _ - . @ :"
        )
    if role not in ROLES:
        raise Unauthorized("invalid token: unknown role")
    email = claims.get("email")
    name = claims.get("name")
    caller = Caller(
        user_id=sub,
        email=email if isinstance(email, str) else None,
        name=name if isinstance(name, str) else None,
        role=role,
    )
    return caller, exp


class TokenVerifier:
    """`verify_token` with the callers of recently verified tokens remembered.

    Verifying HS256 costs tens of microseconds of Python per request (PyJWT parses the
    header, re-derives the key, validates every claim); a client reuses one token for many
    requests. A remembered token is still refused from the second its `exp` passes, the
    moment PyJWT would refuse it, and no other claim can change without a new token (a
    new signature): nothing revokes a token before `exp`, so remembering loses nothing.
    Only tokens that verified are remembered; a forged or broken token is checked in full
    every time, so an attacker cannot fill the table. The table is bounded in entries and
    only short tokens enter it, so it holds at most `max_entries` x `_CACHEABLE_CHARS`.
    """

    def __init__(
        self, secret: str, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.max_entries = max_entries
        self._clock = clock
        self._known: dict[str, tuple[Caller, int]] = {}

    def verify(self, token: str | None) -> Caller:
        if token:
            known = self._known.get(token)
            if known is not None:
                # PyJWT refuses a token once now >= exp: the same boundary here.
                if self._clock() < known[1]:
                    return known[0]
                del self._known[token]
        who, exp = _verify(self.secret, token)
        if token is not None and len(token) <= _CACHEABLE_CHARS:
            if len(self._known) >= self.max_entries:
                # The oldest remembered goes first (dicts keep insertion order).
                del self._known[next(iter(self._known))]
            self._known[token] = (who, exp)
        return who


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def require_role(caller: Caller, *roles: str) -> None:
    if caller.role not in roles:
        raise Forbidden(f"this route needs a {' or '.join(roles)} token")
