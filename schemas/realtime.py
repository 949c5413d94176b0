"""REST bodies of the real-time API (camelCase on the wire)."""

from __future__ import annotations

import msgspec


class Ticket(msgspec.Struct, rename="camel", kw_only=True):
    # Opaque; put it in `/ws?ticket=` within `expires_in` seconds. It opens one connection.
    ticket: str
    expires_in: int
