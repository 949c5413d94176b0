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
    def sink_writelines(self, wires: list[bytes]) -> None: ...
    def sink_close(self, code: int, reason: str) -> None: ...


# Sessions with frames written this loop iteration; flushed together once it ends.
_dirty: list[Session] = []
# One write call carries at most this much; then the transport's flow control is asked again.
_WRITE_CHUNK = 64 * 1024


def _flush_dirty() -> None:
    dirty = _dirty.copy()
    _dirty.clear()
    for session in dirty:
        session.scheduled = False
        session.flush()


class Session:
    """One connection's outgoing frames.

    Frames are queued and written at the end of the event loop iteration, all of a
    session's frames in one write call: a burst (a room's presence storm, a replay)
    costs one system call per session, not one per frame.
    """

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
        "scheduled",
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
        # None while empty: most connections are idle most of the time, and memory per
        # idle connection is what limits how many a process holds.
        self._queue: list[Outgoing] | None = None
        self._bytes = 0
        self._sink = sink
        self.scheduled = False
        # Only without a sink (another ASGI server) does a writer task drain the queue.
        self._wakeup: asyncio.Event | None = None if sink is not None else asyncio.Event()
        if sink is not None:
            sink.on_writable = self.flush
        self.closed = False
        self.close_code = 1000
        self.close_reason = ""
        # A list, not a set: a session follows a handful of conversations at most.
        self.subscriptions: list[str] = []
        self.last_seen = time.monotonic()

    def __hash__(self) -> int:
        return self.id

    def send(self, frame: Outgoing) -> bool:
        """Queue a frame without waiting. False if the session is (now) closed."""
        if self.closed:
            return False
        size = len(frame.payload)
        queue = self._queue
        if queue is None:
            queue = self._queue = []
        if len(queue) >= self.max_frames or self._bytes + size > self.max_bytes:
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")
            return False
        queue.append(frame)
        self._bytes += size
        if self._sink is not None:
            if not self.scheduled:
                self.scheduled = True
                if not _dirty:
                    asyncio.get_running_loop().call_soon(_flush_dirty)
                _dirty.append(self)
        elif self._wakeup is not None and len(queue) == 1:
            self._wakeup.set()
        return True

    def flush(self) -> None:
        """Write what is queued while the transport accepts it; the rest waits for it to drain."""
        sink = self._sink
        queue = self._queue
        if queue is None or sink is None or self.closed:
            return
        count = len(queue)
        if count == 1:
            if sink.sink_writable():
                sink.sink_write(queue[0].wire)
                self._queue = None
                self._bytes = 0
            return
        index = 0
        while index < count and sink.sink_writable():
            start = index
            size = 0
            while index < count and size < _WRITE_CHUNK:
                size += len(queue[index].payload)
                index += 1
            sink.sink_writelines([frame.wire for frame in queue[start:index]])
            self._bytes -= size
        if index >= count:
            self._queue = None
            self._bytes = 0
        elif index:
            self._queue = queue[index:]

    def can_take(self, frames: int, size: int) -> bool:
        """Whether this many frames fit in the queue now, with room left for live traffic."""
        queued = len(self._queue) if self._queue else 0
        return queued + frames <= self.max_frames // 2 and self._bytes + size <= self.max_bytes // 2

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
        self._queue = None
        self._bytes = 0
        if self._sink is not None:
            self._sink.on_writable = None
            self._sink.sink_close(code, reason)
        elif self._wakeup is not None:
            self._wakeup.set()

    async def drain(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Without a sink: write queued frames through ASGI until the session closes."""
        assert self._wakeup is not None, "sessions with a sink are flushed by the transport"
        while not self.closed:
            queue = self._queue
            if not queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._queue = None
            self._bytes = 0
            for frame in queue:
                if self.closed:
                    return
                await send(frame.text)
