"""A server per backend with email (the SendGrid stand-in) and webhooks out switched on fast."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.email.support import SENDGRID_KEY, sendgrid_env
from tests.servers import ServerProcess
from tests.services import create_pg_database, drop_pg_database
from tests.standins.sendgrid import SendGridStandin
from tests.standins.webhook_receiver import WebhookReceiver
from tests.webhooks_out.support import WEBHOOK_ENV

PRIVACY_ENV = {
    **WEBHOOK_ENV,
    "NOTIFICATION_BATCH_TIMEOUT": "0.05",
    "NOTIFICATION_RATE_LIMIT_PER_MINUTE": "100000",
}


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[SendGridStandin]:
    with SendGridStandin(api_key=SENDGRID_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, sendgrid: SendGridStandin
) -> Iterator[ServerProcess]:
    env = {**PRIVACY_ENV, **sendgrid_env(sendgrid)}
    database = create_pg_database() if backend.startswith("postgres") else None
    if database is not None:
        env["DATABASE_URL"] = database
    proc = ServerProcess(tmp_path_factory.mktemp(f"privacy-{backend}"), env)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
        if database is not None:
            drop_pg_database(database)
