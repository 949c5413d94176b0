"""/metrics is not open to the internet in production; a string `exp` is no expiry;
Sentry events carry no log-call arguments."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from server.sentry import scrub
from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, free_port, uid

PRODUCTION = {**TEST_ENV, "ENVIRONMENT": "production", "EMAIL_PROVIDER": "dev"}
PRODUCTION.update(SENDGRID_API_KEY="", AWS_SES_ACCESS_KEY="", AWS_SES_SECRET_KEY="")


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("production"), PRODUCTION)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


async def _metrics(server: ServerProcess, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return await http.get("/metrics", headers=headers)


async def test_production_metrics_without_a_token_are_401(production: ServerProcess) -> None:
    response = await _metrics(production)
    assert response.status_code == 401 and response.json()["error"]["code"]


async def test_production_metrics_with_a_user_token_are_403(production: ServerProcess) -> None:
    response = await _metrics(production, production.token(uid()))
    assert response.status_code == 403


async def test_production_metrics_with_an_admin_token_are_served(
    production: ServerProcess,
) -> None:
    response = await _metrics(production, production.token(uid(), role="admin"))
    assert response.status_code == 200 and "# TYPE" in response.text


async def test_with_metrics_port_metrics_are_served_there_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    port = free_port()
    proc = ServerProcess(
        tmp_path_factory.mktemp("metrics-port"), {**PRODUCTION, "METRICS_PORT": str(port)}
    )
    proc.start()
    try:
        main = await _metrics(proc, proc.token(uid(), role="admin"))
        assert main.status_code == 404
        async with httpx.AsyncClient(timeout=10) as http:
            side = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert side.status_code == 200 and "# TYPE" in side.text
    finally:
        proc.stop()


async def test_a_numeric_string_exp_is_refused(production: ServerProcess) -> None:
    token = jwt.encode(
        {"sub": uid(), "exp": str(int(time.time()) + 3600)}, production.secret, algorithm="HS256"
    )
    async with httpx.AsyncClient(base_url=production.url, timeout=10) as http:
        response = await http.get(
            "/api/messages/conversations", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401


class _Captured(Transport):
    """Sentry's own transport seam: the events as they would leave the process."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.events.extend(
            item.payload.json for item in envelope.items if item.payload.json is not None
        )


def test_sentry_events_from_log_calls_carry_no_arguments() -> None:
    sentry_sdk.init(dsn="https://key@sentry.invalid/1", transport=_Captured, before_send=scrub)  # type: ignore[arg-type]
    try:
        transport = sentry_sdk.get_client().transport
        assert isinstance(transport, _Captured)
        logging.getLogger("pitchey.test").error("could not send to %s", "ann@victim.example")
        sentry_sdk.flush()
    finally:
        sentry_sdk.init()  # no DSN: off again for the rest of the process
    events = [event for event in transport.events if "logentry" in event]
    assert events, transport.events
    assert all("ann@victim.example" not in repr(event) for event in events)
    assert events[0]["logentry"]["message"] == "could not send to %s"
