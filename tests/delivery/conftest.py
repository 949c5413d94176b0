"""Real servers for the delivery tests: the SendGrid stand-in and moto's SES."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from moto.server import ThreadedMotoServer

from delivery.providers.ses import SesProvider
from tests.delivery.samples import FROM, SENDGRID_KEY
from tests.standins.sendgrid import SendGridStandin


@pytest.fixture(scope="session")
def sendgrid_server() -> Iterator[SendGridStandin]:
    with SendGridStandin(api_key=SENDGRID_KEY) as standin:
        yield standin


@pytest.fixture
def sendgrid(sendgrid_server: SendGridStandin) -> Iterator[SendGridStandin]:
    sendgrid_server.reset()
    yield sendgrid_server
    sendgrid_server.reset()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def ses(moto_url: str) -> AsyncIterator[SesProvider]:
    provider = SesProvider(
        region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url=moto_url,
    )
    await provider.start()
    await provider._client.create_email_identity(EmailIdentity=FROM)
    yield provider
    await provider.aclose()
