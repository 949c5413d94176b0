"""A tiny keep-alive HTTP/1.1 client over asyncio streams, for the load generators.

One connection, one request in flight, responses framed by Content-Length (every server
under test sends one). It does no more than the benchmarks need: a client that does little
per request keeps the generator from being the bottleneck (httpx spends several times the
CPU per request on its own machinery).
"""

from __future__ import annotations

import asyncio

HEADER_LIMIT = 64 * 1024  # a response head larger than this is a broken server, not load


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive connection to 127.0.0.1:port; `request` awaits the whole response."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.fixed = f"Host: 127.0.0.1:{port}\r\n{extra}".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=HEADER_LIMIT
        )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """`headers` are sent with this request only, after the connection's own."""
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None and self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self.fixed
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode()
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(head + b"\r\n" + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        closing = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        if length is None:
            raise HttpError(f"{method} {path}: response without Content-Length")
        payload = await self.reader.readexactly(length)
        if closing:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
