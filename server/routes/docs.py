"""/openapi.json (generated from the schemas) and /docs (Swagger UI shipped with the package)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from server import openapi
from server.http import json

DOCS_PAGE = Path(__file__).resolve().parent.parent / "static" / "docs.html"


async def spec(request: Request) -> Response:
    return json(openapi.build())


async def docs(request: Request) -> Response:
    return FileResponse(DOCS_PAGE, media_type="text/html")


routes: list[BaseRoute] = [
    Route("/openapi.json", spec, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Mount("/docs/assets", app=StaticFiles(directory=swagger_ui_bundle.swagger_ui_path)),
]
