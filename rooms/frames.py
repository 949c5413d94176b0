"""An outgoing frame: JSON encoded once, and its WebSocket wire bytes built once.

The same `Outgoing` goes to every session of a fan-out; each connection
writes the same bytes object, so a message to 1,000 subscribers costs one
encode and one frame header, not 1,000.
"""

from __future__ import annotations


class Outgoing:
    __slots__ = ("_wire", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """An unmasked, final text frame (RFC 6455 5.2) carrying the payload."""
        wire = self._wire
        if wire is None:
            size = len(self.payload)
            if size < 126:
                header = bytes((0x81, size))
            elif size < 65536:
                header = b"\x81\x7e" + size.to_bytes(2, "big")
            else:
                header = b"\x81\x7f" + size.to_bytes(8, "big")
            wire = self._wire = header + self.payload
        return wire

    @property
    def text(self) -> str:
        return self.payload.decode()

    def __len__(self) -> int:
        return len(self.payload)
