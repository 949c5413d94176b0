"""The indexed router picks the route Starlette's own walk would pick, and answers the same."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute, Match, Route, Router

from server.app import create_app
from server.routing import IndexedRouter
from server.settings import load_settings
from tests.servers import ServerProcess

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Paths that sit between routes: literal segments a parameter would also take, prefixes,
# trailing slashes, percent-escapes and paths no route has.
AWKWARD = [
    "/",
    "/api",
    "/api/",
    "/api/messages",
    "/api/messages/",
    "/api/messages/send",
    "/api/messages/send/",
    "/api/messages/conversations",
    "/api/messages/attachments",
    "/api/messages/attachments/presign",
    "/api/messages/read",
    f"/api/messages/{uuid.uuid4()}",
    f"/api/messages/{uuid.uuid4()}/read",
    "/api/messages/a%2Fb",
    "/api/users/me/blocks",
    "/api/users/me",
    "/api/notifications/read-all",
    "/api/email/unsubscribe",
    "/healthz",
    "/healthz/",
    "/metricsx",
    "/docs/assets/swagger-ui.css",
    "/static/client.js",
    "/static",
    "/ws",
    "/nowhere/at/all",
]


def _sample_path(route: Route) -> str:
    values = {"uuid": str(uuid.uuid4()), "path": "a/b", "int": "7"}
    path = route.path_format
    for name, convertor in route.param_convertors.items():
        kind = type(convertor).__name__.removesuffix("Convertor").lower()
        path = path.replace("{" + name + "}", values.get(kind, "x1"))
    return path


def _starlette_choice(routes: list[BaseRoute], scope: dict[str, object]) -> BaseRoute | None:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def test_every_request_reaches_the_route_starlettes_walk_would_choose(tmp_path: Path) -> None:
    app = create_app(load_settings({"JWT_SECRET": "x" * 32, "DATA_DIR": str(tmp_path)}))
    router = app.app.router
    assert isinstance(router, IndexedRouter)
    paths = AWKWARD + [_sample_path(r) for r in app.routes if isinstance(r, Route)]
    checked = 0
    for path in paths:
        for method in METHODS:
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            found = router.first_full_match(scope)
            expected = _starlette_choice(router.routes, scope)
            assert (found[0] if found else None) is expected, f"{method} {path}"
            checked += 1
    assert checked > 400


def test_the_index_leaves_out_only_routes_that_cannot_match() -> None:
    async def endpoint(request: object) -> None: ...

    routes: list[BaseRoute] = [
        Route("/a/{x}", endpoint, methods=["GET"]),
        Route("/a/b/c", endpoint, methods=["GET"]),
        Route("/{anything}/b/c", endpoint, methods=["GET"]),
        Route("/a/b/{y}", endpoint, methods=["POST"]),
    ]
    router = IndexedRouter(routes)
    for path in ("/a/b/c", "/q/b/c", "/a/b/z", "/a/z"):
        for method in ("GET", "POST"):
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            found = router.first_full_match(scope)
            assert (found[0] if found else None) is _starlette_choice(Router(routes).routes, scope)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/messages/send", 401),  # a conversation named "send": auth comes first
        ("PUT", "/api/messages/send", 405),
        ("DELETE", "/api/messages/conversations", 405),
        ("GET", "/nowhere", 404),
    ],
)
async def test_method_mismatches_and_unknown_paths_answer_as_before(
    server: ServerProcess, method: str, path: str, status: int
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.request(method, path)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message"}
