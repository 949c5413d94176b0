"""Who is making a request: read from the token by the web layer, passed to every service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    email: str | None = None
    name: str | None = None
    role: str = "user"
