"""The retention sweep: messages older than MESSAGE_RETENTION_DAYS are erased, in batches.

Erased as deletions are (content and attachments gone, the row kept as a tombstone so seqs
stay gap-free) but without a change or an event each: a conversation's subscribers are not
told about every expired message. The highest seq erased in each conversation is kept, so a
subscribe from before it answers `recovered: false`.

Every process sweeps; the sweep is idempotent (a message already erased is skipped, and on
PostgreSQL concurrent sweepers skip each other's locked rows), so no lease is needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from base.periodic import Periodic
from rooms.service import Messaging

log = logging.getLogger("pitchey.retention")

# Messages per transaction: a short write lock on SQLite and a short transaction on
# PostgreSQL, so sends keep flowing while a large backlog is swept.
BATCH = 500


class RetentionSweeper:
    def __init__(
        self,
        messaging: Messaging,
        *,
        days: float,
        interval: float,
        batch: int = BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._messaging = messaging
        self._max_age_ms = int(days * 86_400_000)
        self._batch = batch
        self._clock = clock
        self._periodic = Periodic(
            self._round,
            interval,
            "retention-sweep",
            # The next round retries; nothing is half done (each batch is one transaction).
            on_failure=lambda exc: log.warning("retention sweep failed: %s", exc),
        )

    def start(self) -> None:
        if self._max_age_ms > 0:
            self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _round(self) -> None:
        swept = await self.sweep()
        if swept:
            log.info("retention sweep erased %d messages", swept)

    async def sweep(self) -> int:
        """Erase every message older than the retention; returns how many."""
        cutoff = int(self._clock() * 1000) - self._max_age_ms
        total = 0
        store = self._messaging.store
        while True:
            count, highest = await store.sweep_older_than(cutoff, self._batch)
            if not count:
                return total
            total += count
            await self._messaging.swept(sorted(highest))
            # Give the event loop back between batches.
            await asyncio.sleep(0)
