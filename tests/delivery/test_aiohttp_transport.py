"""AiohttpTransport under httpx against real peers on loopback: the SendGrid stand-in, and a
raw HTTP/1.1 peer for answers the stand-in never gives (oversized, gzip, hung up, held)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
from collections.abc import AsyncIterator
from types import TracebackType

import httpx
import pytest

from delivery.providers.aiohttp_transport import AiohttpTransport, ResponseTooLarge
from delivery.providers.base import ErrorKind, ProviderError
from delivery.providers.sendgrid import SendGridProvider
from tests.delivery.samples import SENDGRID_KEY, make_email
from tests.servers import free_port
from tests.standins.sendgrid import Mode, SendGridStandin

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def answer(status: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith("transfer-encoding") for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 256) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


class RawPeer:
    """Answers every request with the same bytes, after `delay` seconds, or hangs up on it."""

    def __init__(self, response: bytes = b"", *, delay: float = 0.0, hang_up: bool = False) -> None:
        self.response = response or answer("202 Accepted")
        self.delay = delay
        self.hang_up = hang_up
        self.connections = 0
        self.open = 0
        self.requests = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> RawPeer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                self.requests += 1
                await asyncio.sleep(self.delay)
                if self.hang_up:
                    break
                writer.write(self.response)
                await writer.drain()
        self.open -= 1
        writer.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=AiohttpTransport(connections=4), timeout=httpx.Timeout(2.0, connect=1.0)
    ) as http:
        yield http


async def test_sendgrid_202_arrives_with_its_message_id_and_the_body_as_sent(
    client: httpx.AsyncClient, sendgrid: SendGridStandin
) -> None:
    body = (
        b'{"personalizations":[{"to":[{"email":"ann@example.com"}]}],'
        b'"from":{"email":"noreply@pitchey.test"},"subject":"Hi",'
        b'"content":[{"type":"text/plain","value":"hello"}],"custom_args":{"email_id":"e-1"}}'
    )

    response = await client.post(
        f"{sendgrid.url}/v3/mail/send",
        content=body,
        headers={"Authorization": f"Bearer {SENDGRID_KEY}", "Content-Type": "application/json"},
    )

    [seen] = sendgrid.messages()
    assert (response.status_code, response.reason_phrase) == (202, "Accepted")
    assert response.headers["x-message-id"] == seen["message_id"]
    assert seen["custom_args"] == {"email_id": "e-1"}


async def test_repeated_headers_and_the_reason_phrase_arrive_as_the_peer_sent_them(
    client: httpx.AsyncClient,
) -> None:
    response_bytes = answer(
        "429 Slow Down", b"{}", ("Retry-After: 7", "Set-Cookie: a=1", "Set-Cookie: b=2")
    )
    async with RawPeer(response_bytes) as peer:
        response = await client.get(peer.url)

    assert response.status_code == 429
    assert response.reason_phrase == "Slow Down"
    assert response.headers["RETRY-AFTER"] == "7"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


async def test_a_gzip_body_is_decoded_once(client: httpx.AsyncClient) -> None:
    response_bytes = answer(
        "400 Bad Request",
        gzip.compress(b'{"errors":[{"message":"Invalid email"}]}'),
        ("Content-Encoding: gzip", "Content-Type: application/json"),
    )
    async with RawPeer(response_bytes) as peer:
        response = await client.get(peer.url)

    assert response.json() == {"errors": [{"message": "Invalid email"}]}


async def test_a_chunked_body_is_read_whole(client: httpx.AsyncClient) -> None:
    body = b"x" * 5000
    async with RawPeer(answer("200 OK", chunked(body), ("Transfer-Encoding: chunked",))) as peer:
        response = await client.get(peer.url)

    assert response.content == body


async def test_a_body_declared_over_the_bound_is_refused() -> None:
    transport = AiohttpTransport(max_response_bytes=1024)
    async with (
        RawPeer(answer("200 OK", b"x" * 1025)) as peer,
        httpx.AsyncClient(transport=transport) as http,
    ):
        with pytest.raises(ResponseTooLarge):
            await http.get(peer.url)


async def test_a_chunked_body_growing_over_the_bound_is_refused() -> None:
    transport = AiohttpTransport(max_response_bytes=1024)
    body = chunked(b"x" * 4096)
    peer_answer = answer("200 OK", body, ("Transfer-Encoding: chunked",))
    async with RawPeer(peer_answer) as peer, httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ResponseTooLarge):
            await http.get(peer.url)


async def test_an_oversized_sendgrid_answer_is_ambiguous_since_the_request_went_out() -> None:
    async with RawPeer(answer("202 Accepted", b"x" * 2048)) as peer:
        provider = SendGridProvider(
            SENDGRID_KEY, api_url=peer.url, transport=AiohttpTransport(max_response_bytes=1024)
        )
        try:
            with pytest.raises(ProviderError) as info:
                await provider.send(make_email())
        finally:
            await provider.aclose()

    assert info.value.kind is ErrorKind.AMBIGUOUS
    assert isinstance(info.value.__cause__, ResponseTooLarge)


async def test_an_answer_slower_than_the_read_timeout_is_a_read_timeout(
    client: httpx.AsyncClient, sendgrid: SendGridStandin
) -> None:
    sendgrid.set_mode(Mode(delay_ms=1000, count=1))

    with pytest.raises(httpx.ReadTimeout):
        await client.post(f"{sendgrid.url}/v3/mail/send", content=b"{}", timeout=0.2)


async def test_each_request_keeps_its_own_timeout(client: httpx.AsyncClient) -> None:
    async with RawPeer(delay=0.4) as peer:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(peer.url, timeout=0.1)
        response = await client.get(peer.url, timeout=2.0)

    assert response.status_code == 202


async def test_a_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{free_port()}/")


async def test_a_peer_that_hangs_up_without_answering_is_a_remote_protocol_error(
    client: httpx.AsyncClient,
) -> None:
    async with RawPeer(hang_up=True) as peer:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(peer.url, content=b"{}")

    assert peer.requests == 1


async def test_a_wait_for_a_pooled_connection_past_the_timeout_sends_nothing() -> None:
    transport = AiohttpTransport(connections=1)
    timeout = httpx.Timeout(5.0, connect=0.1, pool=0.1)
    async with (
        RawPeer(delay=1.0) as peer,
        httpx.AsyncClient(transport=transport, timeout=timeout) as http,
    ):
        held = asyncio.create_task(http.get(peer.url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.ConnectTimeout):
            await http.get(peer.url)
        assert peer.requests == 1
        await held


async def test_connections_are_kept_alive_and_never_more_than_the_limit(
    client: httpx.AsyncClient,
) -> None:
    async with RawPeer(delay=0.05) as peer:
        await asyncio.gather(*(client.get(peer.url) for _ in range(12)))
        await client.get(peer.url)

    assert peer.requests == 13
    assert peer.connections == 4


async def test_closing_the_client_closes_its_kept_alive_connections() -> None:
    async with RawPeer(delay=0.05) as peer:
        http = httpx.AsyncClient(transport=AiohttpTransport())
        await asyncio.gather(*(http.get(peer.url) for _ in range(3)))
        assert peer.open == 3

        await http.aclose()
        deadline = asyncio.get_running_loop().time() + 2.0
        while peer.open and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    assert peer.open == 0
