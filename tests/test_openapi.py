"""The OpenAPI document covers every route, and the running server keeps to it (schemathesis)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server import openapi
from server.app import create_app
from server.settings import load_settings
from tests.servers import ServerProcess, uid

# Conformance checks: no 5xx, only documented statuses and content types, bodies match
# their schemas. (Positive-data acceptance is left out: opaque cursors and multipart files
# that satisfy the schema can still be refused, rightly, with a 4xx.)
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "15")


def test_every_route_has_an_openapi_entry(tmp_path: Path) -> None:
    app = create_app(load_settings({"JWT_SECRET": "x" * 32, "DATA_DIR": str(tmp_path)}))
    documented = {(op.method, op.path) for op in openapi.OPERATIONS}
    missing = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if path in openapi.UNDOCUMENTED:
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD" and (method, path) not in documented:
                missing.append(f"{method} {path}")
    assert missing == []


async def test_openapi_json_and_docs_page_are_served_without_a_cdn(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        spec = (await http.get("/openapi.json")).json()
        page = (await http.get("/docs")).text
        asset = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert spec["openapi"] == "3.1.0"
    assert "/api/messages/send" in spec["paths"]
    assert all("responses" in op for ops in spec["paths"].values() for op in ops.values())
    assert "https://" not in page and asset.status_code == 200


@pytest.mark.parametrize("who", ["user", "service", "bad-token"])
def test_schemathesis_finds_no_5xx_and_no_spec_violation(server: ServerProcess, who: str) -> None:
    token = "not-a-token" if who == "bad-token" else server.token(uid(), role=who)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            EXAMPLES,
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261128",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:]
