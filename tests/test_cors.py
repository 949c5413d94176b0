"""CORS: a web app on another origin calls the REST API with its bearer token."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.servers import ServerProcess, uid

APP = "https://app.pitchey.test"


def preflight(
    server: ServerProcess, origin: str, path: str = "/api/notifications"
) -> httpx.Response:
    return httpx.options(
        f"{server.url}{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )


def test_preflight_from_an_allowed_origin_is_answered(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(ALLOWED_ORIGINS=APP)

    answer = preflight(server, APP)

    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert "PUT" in answer.headers["access-control-allow-methods"]
    assert answer.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in answer.headers


def test_preflight_is_answered_for_every_route(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(ALLOWED_ORIGINS=APP)

    for path in ("/api/messages/conversations", "/api/email/send", "/api/notifications/read-all"):
        assert preflight(server, APP, path).headers["access-control-allow-origin"] == APP


def test_an_actual_request_exposes_retry_after_and_the_request_id(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(ALLOWED_ORIGINS=APP)

    answer = httpx.get(
        f"{server.url}/api/notifications",
        headers={"Origin": APP, "Authorization": f"Bearer {server.token(uid())}"},
    )

    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP
    exposed = {
        h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")
    }
    assert {"retry-after", "x-request-id"} <= exposed


def test_an_origin_not_listed_gets_no_cors_headers(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(ALLOWED_ORIGINS=APP)

    answer = httpx.get(
        f"{server.url}/api/notifications",
        headers={"Origin": "https://evil.test", "Authorization": f"Bearer {server.token(uid())}"},
    )

    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in preflight(server, "https://evil.test").headers


def test_a_star_allows_any_origin(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(ALLOWED_ORIGINS="*")

    answer = preflight(server, "https://anyone.test")

    assert answer.headers["access-control-allow-origin"] == "*"
