"""One-use, short-lived tickets that stand in for a bearer token in the `/ws` URL.

URLs end up in proxy logs and browser history; a ticket found there is already
spent or expired. A ticket maps to the Caller it was issued to. Only a hash of
it is stored, so whoever reads the store (or Redis) cannot redeem what they see.
With Redis (state.redis.RedisTicketStore) a ticket issued on one node is redeemed
on any other, exactly once (GETDEL).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import msgspec

from base.identity import Caller


class TicketStore(Protocol):
    async def issue(self, caller: Caller, ttl: float) -> str:
        """A new ticket for `caller`, valid `ttl` seconds and redeemable once."""
        ...

    async def redeem(self, ticket: str) -> Caller | None:
        """The Caller the ticket was issued to, or None (unknown, spent or expired)."""
        ...


class _Claims(msgspec.Struct, array_like=True):
    user_id: str
    email: str | None
    name: str | None
    role: str


def new_ticket() -> str:
    return secrets.token_urlsafe(32)


def ticket_digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def encode_caller(caller: Caller) -> bytes:
    return msgspec.json.encode(_Claims(caller.user_id, caller.email, caller.name, caller.role))


def decode_caller(raw: bytes) -> Caller:
    claims = msgspec.json.decode(raw, type=_Claims)
    return Caller(user_id=claims.user_id, email=claims.email, name=claims.name, role=claims.role)


class MemoryTicketStore:
    # Tickets live seconds; the bound only caps what a flood of issues could hold.
    _MAX = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # digest -> (expires at, caller), in order of issue (so of expiry for one ttl).
        self._tickets: OrderedDict[str, tuple[float, Caller]] = OrderedDict()

    async def issue(self, caller: Caller, ttl: float) -> str:
        now = self._clock()
        while self._tickets:
            digest, (expires, _) = next(iter(self._tickets.items()))
            if expires > now and len(self._tickets) < self._MAX:
                break
            del self._tickets[digest]
        ticket = new_ticket()
        self._tickets[ticket_digest(ticket)] = (now + ttl, caller)
        return ticket

    async def redeem(self, ticket: str) -> Caller | None:
        found = self._tickets.pop(ticket_digest(ticket), None)
        if found is None or found[0] <= self._clock():
            return None
        return found[1]
