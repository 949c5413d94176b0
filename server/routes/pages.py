"""The demo page (development only): a conversation view and a notification inbox."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from base.errors import NotFound
from server.http import services

DEMO = Path(__file__).resolve().parent.parent / "static" / "demo.html"


async def demo(request: Request) -> Response:
    if not services(request).settings.development:
        raise NotFound("not found")
    return FileResponse(DEMO, media_type="text/html")


routes = [Route("/demo", demo, methods=["GET"])]
