"""On a uvicorn that lacks what server/transport.py needs, the service still serves, on uvicorn's
own protocol, and says so in one warning."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import TEST_ENV
from tests.servers import ServerProcess, conversation, uid, ws_client

# Run by the server's interpreter before anything else: it replaces uvicorn's websockets-sansio
# module by a copy in which `close_sent` is called `closing_sent`, as if a uvicorn release
# had renamed it. The copy is consistent, so uvicorn's own protocol still works; ours would not.
RENAMING_SHIM = """
import importlib.util
import pathlib
import sys

import uvicorn.protocols.websockets as package

NAME = "uvicorn.protocols.websockets.websockets_sansio_impl"
original = pathlib.Path(package.__file__).parent / "websockets_sansio_impl.py"
renamed = pathlib.Path(__file__).parent / "renamed_sansio_impl.py"
renamed.write_text(original.read_text().replace("close_sent", "closing_sent"))
spec = importlib.util.spec_from_file_location(NAME, renamed)
module = importlib.util.module_from_spec(spec)
sys.modules[NAME] = module
spec.loader.exec_module(module)
"""


@pytest.fixture
def renamed_uvicorn_server(tmp_path: Path) -> Iterator[ServerProcess]:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(RENAMING_SHIM)
    path = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH", "")) if p)
    proc = ServerProcess(tmp_path / "server", {**TEST_ENV, "PYTHONPATH": path})
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


async def test_incompatible_uvicorn_falls_back_to_its_own_protocol_with_one_warning(
    renamed_uvicorn_server: ServerProcess,
) -> None:
    server = renamed_uvicorn_server
    alice, bob = uid(), uid()
    conv = await conversation(server, alice, bob)
    async with ws_client(server, alice) as a, ws_client(server, bob) as b:
        await a.subscribe(conv)
        await b.subscribe(conv)
        for i in range(10):
            await a.send({"type": "send", "conversationId": conv, "content": f"m{i}"})
            await a.expect("ack")
        assert [m["seq"] for m in await b.messages(10)] == list(range(1, 11))
    lines = [json.loads(line) for line in server.log_tail(1_000_000).splitlines() if line]
    about_fast_path = [line for line in lines if "fast path" in line["message"]]
    assert len(about_fast_path) == 1, about_fast_path
    (warning,) = about_fast_path
    assert warning["level"] == "warning"
    assert f"uvicorn {uvicorn.__version__}" in warning["message"]
    assert "close_sent" in warning["message"]
