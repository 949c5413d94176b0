"""A connection's outgoing side: direct writes while the socket keeps up, a bounded queue when not.

`websockets.broadcast()` and most peers queue without bound, which is how one
slow client grows a server's memory. Here the policy is written down: frames
go straight to the transport while it is writable; when it is not, they wait
in a queue bounded in frames and bytes, flushed as soon as the transport
drains. When either bound is reached the session is closed with 1013 ("try
again later"); the client reconnects and recovers with `since`. Nobody else's
delivery waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from rooms import metrics
from rooms.frames import Outgoing

# Close codes of the protocol (docs/protocol.md).
CLOSE_SLOW_CONSUMER = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008

log = logging.getLogger("pitchey.sessions")


class Sink(Protocol):
    """The transport side of a connection (server.transport.DirectWebSocketProtocol)."""

    on_writable: Callable[[], None] | None

    def sink_writable(self) -> bool: ...
    def sink_write(self, wire: bytes) -> None: ...
    def sink_close(self, code: int, reason: str) -> None: ...


class Session:
    __slots__ = (
        "_bytes",
        "_queue",
        "_sink",
        "_wakeup",
        "close_code",
        "close_reason",
        "closed",
        "id",
        "last_seen",
        "max_bytes",
        "max_frames",
        "subscriptions",
        "user_id",
    )

    def __init__(
        self,
        session_id: int,
        user_id: str,
        max_frames: int,
        max_bytes: int,
        sink: Sink | None = None,
    ) -> None:
        self.id = session_id
        self.user_id = user_id
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._queue: deque[Outgoing] = deque()
        self._bytes = 0
        self._sink = sink
        # Only without a sink (another ASGI server) does a writer task drain the queue.
        self._wakeup: asyncio.Event | None = None if sink is not None else asyncio.Event()
        if sink is not None:
            sink.on_writable = self.flush
        self.closed = False
        self.close_code = 1000
        self.close_reason = ""
        self.subscriptions: set[str] = set()
        self.last_seen = time.monotonic()

    def __hash__(self) -> int:
        return self.id

    def send(self, frame: Outgoing) -> bool:
        """Write or queue a frame without waiting. False if the session is (now) closed."""
        if self.closed:
            return False
        queue = self._queue
        sink = self._sink
        if not queue and sink is not None and sink.sink_writable():
            sink.sink_write(frame.wire)
            return True
        size = len(frame.payload)
        if len(queue) >= self.max_frames or self._bytes + size > self.max_bytes:
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")
            return False
        queue.append(frame)
        self._bytes += size
        if self._wakeup is not None and len(queue) == 1:
            self._wakeup.set()
        return True

    def flush(self) -> None:
        """The transport drained: write what waited, until it pauses again."""
        sink = self._sink
        queue = self._queue
        while queue and sink is not None and sink.sink_writable():
            frame = queue.popleft()
            self._bytes -= len(frame.payload)
            sink.sink_write(frame.wire)

    def can_take(self, frames: int, size: int) -> bool:
        """Whether this many frames fit in the queue now, with room left for live traffic."""
        return (
            len(self._queue) + frames <= self.max_frames // 2
            and self._bytes + size <= self.max_bytes // 2
        )

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        if code == CLOSE_SLOW_CONSUMER:
            metrics.slow_consumer_disconnects.inc()
            log.warning("session %d of %s closed: %s", self.id, self.user_id, reason)
        if self._queue:
            metrics.send_queue_drops.inc(len(self._queue))
        self._queue.clear()
        self._bytes = 0
        if self._sink is not None:
            self._sink.on_writable = None
            self._sink.sink_close(code, reason)
        elif self._wakeup is not None:
            self._wakeup.set()

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    async def drain(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Without a sink: write queued frames through ASGI until the session closes."""
        assert self._wakeup is not None, "sessions with a sink are flushed by the transport"
        queue = self._queue
        while not self.closed:
            if not queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            frame = queue.popleft()
            self._bytes -= len(frame.payload)
            await send(frame.text)
