"""Group commit: messages from every room are stored in shared transactions.

A sender awaits its message's future; the writer takes everything queued (up to
`batch_max`), stores it in one transaction, resolves the futures, then publishes
the frames in seq order. While one commit runs, the next batch fills up, so the
batch size follows the load and an idle server commits each message at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from base.errors import NotFound, Unavailable
from base.failures import RepeatedFailure
from rooms import metrics
from rooms.broker import Broker, conversation_channel
from rooms.views import message_frame
from storage.db import DatabaseUnavailable, StorageFull
from storage.messages import MessageStore, NewMessage, StoredMessage

log = logging.getLogger("pitchey.writer")

AfterCommit = Callable[[Sequence[StoredMessage]], Awaitable[None]]


class MessageWriter:
    def __init__(
        self,
        store: MessageStore,
        broker: Broker,
        *,
        batch_max: int,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self._store = store
        self._broker = broker
        self._batch_max = batch_max
        self._after_commit = after_commit
        self._pending: list[tuple[NewMessage, asyncio.Future[StoredMessage]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # The error code of the last commit if it failed, None if it succeeded (or none ran):
        # what readiness reports, since a database that answers reads may still refuse writes.
        self.failure: str | None = None
        self._failures = RepeatedFailure(log, "message batches not stored", level=logging.ERROR)

    async def can_commit(self) -> str | None:
        """None if a commit would succeed, else the error code of why not.

        After a success that is what the last commit said; after a failure a probe write
        decides, so a writer with nothing to commit still finds out the database is back.
        """
        if self.failure is None:
            return None
        try:
            await self._store.db.probe_write()
        except StorageFull:
            return "storage_full"
        except Exception:
            return "unavailable"
        self.failure = None
        return None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="message-writer")

    async def stop(self) -> None:
        """Flush what is queued, then stop (graceful shutdown loses nothing)."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def submit(self, message: NewMessage) -> StoredMessage:
        if self._closing:
            raise Unavailable("server is shutting down")
        future: asyncio.Future[StoredMessage] = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._pending[: self._batch_max]
            del self._pending[: self._batch_max]
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[NewMessage, asyncio.Future[StoredMessage]]]) -> None:
        try:
            stored = await self._store.insert_batch([item for item, _ in batch])
        except LookupError:
            # A conversation vanished: commit the others one by one so each gets its own answer.
            if len(batch) > 1:
                for single in batch:
                    await self._commit([single])
                return
            _fail(batch, NotFound("conversation not found"))
            return
        except StorageFull as exc:
            self.failure = "storage_full"
            self._failures.failed(exc)
            _fail(batch, Unavailable("storage is full, message not stored", code="storage_full"))
            return
        except DatabaseUnavailable as exc:
            self.failure = "unavailable"
            self._failures.failed(exc)
            _fail(batch, Unavailable("storage unavailable, message not stored"))
            return
        except Exception as exc:
            self.failure = "unavailable"
            log.exception("message batch of %d not stored", len(batch))
            _fail(batch, Unavailable(f"message not stored: {type(exc).__name__}"))
            return
        self.failure = None
        self._failures.succeeded()
        # A repeated clientMsgId answers with the first message; it is not published again.
        fresh = [message for message, created in stored if created]
        metrics.commit_batch.observe(len(batch))
        metrics.messages_stored.inc(len(fresh))
        if fresh and self._after_commit is not None:
            # Before anyone hears of the message: a sender who lists its conversations
            # right after its 201 or ack must not be served the cached list from before.
            try:
                await self._after_commit(fresh)
            except Exception:
                log.exception("after-commit hook failed")
        for (_, future), (message, _created) in zip(batch, stored, strict=True):
            if not future.done():
                future.set_result(message)
        if not fresh:
            return
        fresh.sort(key=lambda m: (m.conversation_id, m.seq))
        try:
            await self._broker.publish_many(
                [(conversation_channel(m.conversation_id), message_frame(m)) for m in fresh]
            )
        except Exception:
            # Stored is what counts: rooms that miss the event find the gap and read storage.
            log.exception("publishing %d stored messages failed", len(fresh))


def _fail(batch: list[tuple[NewMessage, asyncio.Future[StoredMessage]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
