"""The start-up check of what server/transport.py needs from uvicorn's private protocol class."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from server.transport import (
    BASE_ATTRIBUTES,
    BASE_METHODS,
    BASE_MODULE,
    CONNECTION_METHODS,
    DirectWebSocketProtocol,
    base_incompatibility,
    fast_path_incompatibility,
)
from tests.servers import ROOT


def test_the_installed_uvicorn_has_everything_the_fast_path_needs() -> None:
    assert fast_path_incompatibility() is None


def test_the_checked_names_cover_every_use_of_uvicorn_in_the_subclass() -> None:
    """A new `self.x` in DirectWebSocketProtocol must be checked at start too."""
    (cls,) = ast.parse(textwrap.dedent(inspect.getsource(DirectWebSocketProtocol))).body
    assert isinstance(cls, ast.ClassDef)
    own = {node.name for node in cls.body if isinstance(node, ast.FunctionDef)}
    own |= {
        node.target.id
        for node in cls.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    used: set[str] = set()
    on_conn: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if _is_self(owner) and node.attr not in own:
                used.add(node.attr)
            elif isinstance(owner, ast.Call) and _is_name(owner.func, "super"):
                used.add(node.attr)
            elif (
                isinstance(owner, ast.Attribute) and _is_self(owner.value) and owner.attr == "conn"
            ):
                on_conn.add(node.attr)
        elif isinstance(node, ast.Call) and _is_name(node.func, "getattr"):
            # getattr(self, "scope", None)
            first, name = node.args[0], node.args[1]
            if _is_self(first) and isinstance(name, ast.Constant):
                used.add(str(name.value))
    assert used - {*BASE_METHODS, *BASE_ATTRIBUTES} == set()
    assert on_conn - set(CONNECTION_METHODS) == set()
    # And nothing is checked that the subclass does not use.
    assert used == {*BASE_METHODS, *BASE_ATTRIBUTES}
    assert on_conn == set(CONNECTION_METHODS)


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_self(node: ast.expr) -> bool:
    return _is_name(node, "self")


class WithoutKeepaliveStop(WebSocketsSansIOProtocol):
    """A uvicorn whose keepalive method was renamed."""

    stop_keepalive = None  # type: ignore[assignment]


def test_a_missing_method_is_named() -> None:
    assert (
        base_incompatibility(WithoutKeepaliveStop) == "WithoutKeepaliveStop has no stop_keepalive"
    )


class NeverReadPaused:
    """A protocol that assigns everything the subclass reads except `read_paused`."""

    def __init__(self) -> None:
        self.writable = self.close_sent = self.disconnected = self.handshake_complete = None
        self.transport, self.conn, self.queue = None, None, None
        self.loop: object = None
        self.close_timer = self.close_timeout = None

    def handle_connect(self) -> None:
        self.scope = self.response = None

    def start_keepalive(self) -> None: ...

    def stop_keepalive(self) -> None: ...

    def shutdown(self) -> None: ...

    def resume_writing(self) -> None: ...

    def connection_lost(self) -> None: ...


def test_an_attribute_the_class_never_assigns_is_named() -> None:
    assert base_incompatibility(NeverReadPaused) == "NeverReadPaused has no read_paused"


def test_a_uvicorn_without_the_sansio_protocol_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As on uvicorn 0.34: the module does not exist.
    monkeypatch.setitem(sys.modules, BASE_MODULE, None)
    reason = fast_path_incompatibility()
    assert reason is not None and reason.startswith(f"{BASE_MODULE} cannot be imported")


def test_a_class_without_readable_source_is_not_trusted() -> None:
    # Defined by exec in a module with no file: inspect cannot find its source.
    namespace: dict[str, object] = {"__name__": "compiled_elsewhere"}
    exec("class Compiled: pass", namespace)
    compiled = namespace["Compiled"]
    assert isinstance(compiled, type)
    reason = base_incompatibility(compiled)
    assert reason is not None and "cannot be read" in reason


def test_the_app_still_imports_on_a_uvicorn_without_the_sansio_protocol() -> None:
    """server/ws.py imports server/transport.py: that must not need the missing base class."""
    script = (
        "import sys\n"
        f"sys.modules[{BASE_MODULE!r}] = None\n"
        "import server.app, server.transport\n"
        "from server.cli import _plain_ws_protocol\n"
        "print(server.transport.fast_path_incompatibility() is not None, _plain_ws_protocol())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "auto"]
