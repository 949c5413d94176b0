"""One provider name over several HTTP clients, taken in turn.

httpcore's connection pool scans every connection on each request, so one client
with many connections spends more CPU on the scan than on the send; several small
pools keep that cost flat as send concurrency grows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from delivery.providers.base import EmailProvider, OutgoingEmail, SendResult


class RoundRobinProvider:
    def __init__(self, providers: Sequence[EmailProvider]) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        self.name = providers[0].name
        self._providers = list(providers)
        self._next = itertools.cycle(self._providers)

    async def send(self, email: OutgoingEmail) -> SendResult:
        return await next(self._next).send(email)

    async def aclose(self) -> None:
        for provider in self._providers:
            await provider.aclose()
