"""Real peers for the email tests: the SendGrid stand-in, moto's SES, and our server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest

from tests.email.support import (
    EMAIL_ENV,
    FROM,
    SENDGRID_KEY,
    EmailServer,
    ServerFactory,
    sendgrid_env,
)
from tests.servers import ServerProcess, moto_process
from tests.standins.sendgrid import SendGridStandin


@pytest.fixture(scope="session")
def standin() -> Iterator[SendGridStandin]:
    with SendGridStandin(api_key=SENDGRID_KEY) as server:
        yield server


@pytest.fixture
def sendgrid(standin: SendGridStandin) -> Iterator[SendGridStandin]:
    standin.reset()
    yield standin
    standin.reset()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto_process() as url:
        ses = boto3.client(
            "sesv2",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ses.create_email_identity(EmailIdentity=FROM)
        yield url


@pytest.fixture
async def make_email_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start our server with EMAIL_ENV plus overrides; everything stops after the test."""
    started: list[EmailServer] = []

    async def make(data_dir: Path | None = None, **env: str) -> EmailServer:
        proc = ServerProcess(data_dir or tmp_path / f"s{len(started)}", {**EMAIL_ENV, **env})
        await asyncio.to_thread(proc.start)
        http = proc.client("mailer", role="service")
        server = EmailServer(proc, http)
        started.append(server)
        return server

    yield make
    for server in started:
        await server.http.aclose()
        await asyncio.to_thread(server.proc.stop)


@pytest.fixture(scope="module")
async def shared_mail(
    standin: SendGridStandin, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EmailServer]:
    proc = ServerProcess(tmp_path_factory.mktemp("mail"), {**EMAIL_ENV, **sendgrid_env(standin)})
    await asyncio.to_thread(proc.start)
    async with proc.client("mailer", role="service") as http:
        yield EmailServer(proc, http)
    await asyncio.to_thread(proc.stop)


@pytest.fixture
def mail(shared_mail: EmailServer, sendgrid: SendGridStandin) -> EmailServer:
    """One server per module sending through the SendGrid stand-in only (reset per test)."""
    return shared_mail
