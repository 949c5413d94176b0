"""HS256 bearer tokens. Claims: sub (required), exp (required), email, name, role."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt

from base.errors import Forbidden, Unauthorized
from base.identity import Caller

ROLES = ("user", "service", "admin")
# Bound the cost of decoding what an anonymous client sends.
_MAX_TOKEN_CHARS = 8192
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
    return Caller(
        user_id=sub,
        email=email if isinstance(email, str) else None,
        name=name if isinstance(name, str) else None,
        role=role,
    )


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
