"""An httpx transport that sends through one aiohttp session.

httpcore scans its whole connection pool on every request and wraps each socket call in
anyio streams: about 1 ms of CPU per SendGrid send at our concurrency, more than the rest of
the pipeline. aiohttp takes a kept-alive connection from a per-host queue and parses in C,
so the provider keeps httpx's API (client, timeouts, exceptions) at aiohttp's cost.
"""

from __future__ import annotations

import functools

import aiohttp
import httpx

# Provider answers are a few hundred bytes of JSON; a body this large is not one, and reading
# it would hold a send slot and memory for nothing.
MAX_RESPONSE_BYTES = 1024 * 1024
# aiohttp's own default, and httpx's default max_connections.
DEFAULT_CONNECTIONS = 100
# httpx's keep-alive expiry: an idle connection is dropped before a peer with a 5 s idle
# timeout (uvicorn's, many proxies') closes it under a request we just sent.
KEEPALIVE_EXPIRY = 5.0
_HTTP_11 = b"HTTP/1.1"


class ResponseTooLarge(httpx.RemoteProtocolError):
    """The peer answered with more than the transport reads; the request may have taken effect."""


@functools.lru_cache(maxsize=32)
def _client_timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    """httpx's timeouts in aiohttp's terms (cached: a client sends with the same ones).

    aiohttp's `connect` covers waiting for a pooled connection and opening a new one, httpx's
    `pool` then `connect`; `sock_connect` bounds the opening alone. aiohttp starts `sock_read`
    once the body is written and restarts it on every chunk received, as httpx's `read`.
    httpx's `write` has no aiohttp counterpart: a body the peer stops reading waits for TCP
    to give up. Provider bodies fit the socket buffer; only large attachments could wait.
    """
    acquire = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=read)


def _httpx_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception that says the same about whether the request reached the peer."""
    message = str(exc) or repr(exc)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        # Also raised for a wait on the pool: as with httpx's PoolTimeout, nothing was sent.
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    # A reset or a failed write on an open connection: the request may have gone out.
    return httpx.ReadError(message, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with at most `connections` open, all kept alive; close it with ``aclose``."""

    def __init__(
        self,
        *,
        connections: int = DEFAULT_CONNECTIONS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._connections = connections
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Opened on first use: a session belongs to the running loop, and providers are
        # built before it runs.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._connections, keepalive_timeout=KEEPALIVE_EXPIRY
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            # httpx decodes by Content-Encoding itself, as it does over its own transport;
            # decoded twice, a gzip body would fail.
            auto_decompress=False,
            # Proxies come from httpx's settings, which skip the environment for a transport
            # given to the client.
            trust_env=False,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        session = self._session or self._open()
        content = await request.aread()
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=content or None,
                # httpx follows redirects itself when its caller asks.
                allow_redirects=False,
                timeout=_client_timeout(
                    timeout.get("connect"), timeout.get("read"), timeout.get("pool")
                ),
            ) as response:
                body = await self._read_body(response, request)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _httpx_error(exc, request) from exc
        version = response.version
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(body),
            extensions={
                "http_version": _HTTP_11
                if version is None or version == aiohttp.HttpVersion11
                else f"HTTP/{version.major}.{version.minor}".encode(),
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def _read_body(self, response: aiohttp.ClientResponse, request: httpx.Request) -> bytes:
        """The whole body, refused past the bound before more than the bound is read."""
        limit = self._max_response_bytes
        declared = response.content_length
        if declared is not None:
            if declared > limit:
                response.close()
                raise ResponseTooLarge(
                    f"the response declares {declared} bytes, over {limit}", request=request
                )
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                response.close()
                raise ResponseTooLarge(f"the response is over {limit} bytes", request=request)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
