"""uvicorn's websockets-sansio protocol, plus a direct path for prebuilt frames.

Through ASGI every frame of a fan-out costs a task switch, a dict, an encode
and a frame build per subscriber. This protocol offers the app a `Sink` in the
scope's extensions (`pitchey.sink`): a frame built once is written to each
transport directly, while the transport is writable. Flow control and the
close handshake stay uvicorn's: when the transport pauses, sessions queue
(bounded) and flush on `resume_writing`; closes go through the same
`ServerProtocol` state machine. Compression is off (`ws_per_message_deflate`
false), which is what makes a shared prebuilt frame valid on every connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

SINK_EXTENSION = "pitchey.sink"


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    on_writable: Callable[[], None] | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The ASGI task was created but has not run yet: the scope can still be extended.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][SINK_EXTENSION] = {"sink": self}

    # ---- the Sink interface used by rooms.session.Session ----------------------

    def sink_writable(self) -> bool:
        return self.writable.is_set() and not self.close_sent and not self.disconnected

    def sink_write(self, wire: bytes) -> None:
        self.transport.write(wire)

    def sink_writelines(self, wires: list[bytes]) -> None:
        self.transport.writelines(wires)

    def sink_close(self, code: int, reason: str) -> None:
        """Start the closing handshake now, whatever is queued, and release the app's reader."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # A peer that reads nothing never lets the close frame out: abort after the timeout
        # (transport.close() would wait for a flush that never comes).
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def shutdown(self) -> None:
        """Server shutdown: 1001 "going away" (reconnect elsewhere) rather than uvicorn's 1012."""
        if self.handshake_complete and not self.close_sent and not self.disconnected:
            self.stop_keepalive()
            self.sink_close(1001, "server shutting down")
            return
        super().shutdown()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_writable is not None:
            self.on_writable()

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_writable = None
        super().connection_lost(exc)
