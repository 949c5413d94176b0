"""Real servers for the delivery tests: the SendGrid stand-in and moto's SES."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from delivery.providers.ses import SesProvider
from tests.delivery.samples import FROM, SENDGRID_KEY
from tests.servers import moto_process
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
    with moto_process() as url:
        yield url


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
