"""The stand-in's own contract: control over HTTP and SendGrid-shaped validation."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.delivery.samples import SENDGRID_KEY
from tests.standins.sendgrid import SendGridStandin

VALID = {
    "personalizations": [{"to": [{"email": "ann@example.com"}]}],
    "from": {"email": "noreply@pitchey.test"},
    "subject": "Hi",
    "content": [{"type": "text/plain", "value": "Hello"}],
}


def post(standin: SendGridStandin, body: object) -> httpx.Response:
    return httpx.post(
        f"{standin.url}/v3/mail/send",
        json=body,
        headers={"Authorization": f"Bearer {SENDGRID_KEY}"},
    )


def test_accepted_messages_are_listed_over_http(sendgrid: SendGridStandin) -> None:
    response = post(sendgrid, VALID)

    listed = httpx.get(f"{sendgrid.url}/_standin/messages").json()
    assert response.status_code == 202
    assert [m["message_id"] for m in listed] == [response.headers["x-message-id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"personalizations": []}, "personalizations"),
        ({"from": {"email": "nope"}}, "from.email"),
        ({"subject": ""}, "subject"),
        ({"content": [{"type": "text/plain", "value": ""}]}, "content.0.value"),
        (
            {
                "content": [
                    {"type": "text/html", "value": "h"},
                    {"type": "text/plain", "value": "t"},
                ]
            },
            "content",
        ),
    ],
)
def test_invalid_requests_get_sendgrid_error_bodies(
    sendgrid: SendGridStandin, change: dict[str, object], field: str
) -> None:
    response = post(sendgrid, {**VALID, **change})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_failure_mode_set_over_http_lasts_for_count_requests(sendgrid: SendGridStandin) -> None:
    httpx.post(f"{sendgrid.url}/_standin/mode", json={"fail_status": 503, "count": 2})

    statuses = [post(sendgrid, VALID).status_code for _ in range(3)]

    assert statuses == [503, 503, 202]


def test_reset_releases_a_hung_request(sendgrid: SendGridStandin) -> None:
    httpx.post(f"{sendgrid.url}/_standin/mode", json={"hang": True})
    started = time.monotonic()

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{sendgrid.url}/v3/mail/send", json=VALID, timeout=0.2)
    httpx.post(f"{sendgrid.url}/_standin/reset")

    assert post(sendgrid, VALID).status_code == 202
    assert time.monotonic() - started < 5
