"""uvicorn's websockets-sansio protocol, plus a direct path for prebuilt frames.

Through ASGI every frame of a fan-out costs a task switch, a dict, an encode
and a frame build per subscriber. This protocol offers the app a `Sink` in the
scope's extensions (`pitchey.sink`): a frame built once is written to each
transport directly, while the transport is writable. Flow control and the
close handshake stay uvicorn's: when the transport pauses, sessions queue
(bounded) and flush on `resume_writing`; closes go through the same
`ServerProtocol` state machine. Compression is off (`ws_per_message_deflate`
false), which is what makes a shared prebuilt frame valid on every connection.

The subclass leans on uvicorn internals (pyproject.toml pins the versions it is tested
against). server/cli.py asks `fast_path_incompatibility()` first: on a uvicorn that lacks
any of them it runs uvicorn's own protocol, and sessions drain through plain ASGI.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from base.slim import SlimEvent, SlimQueue

SINK_EXTENSION = "pitchey.sink"

BASE_MODULE = "uvicorn.protocols.websockets.websockets_sansio_impl"
BASE_CLASS = "WebSocketsSansIOProtocol"

# What DirectWebSocketProtocol uses of uvicorn's class: none of it is public API, so every
# name is checked at start (fast_path_incompatibility) before the subclass is handed to
# uvicorn. tests/test_transport_check.py keeps these lists true to the code below.
BASE_METHODS = (
    "__init__",
    "handle_connect",
    "start_keepalive",
    "stop_keepalive",
    "shutdown",
    "resume_writing",
    "connection_lost",
)
BASE_ATTRIBUTES = (
    "scope",
    "writable",
    "close_sent",
    "disconnected",
    "handshake_complete",
    "transport",
    "conn",
    "queue",
    "read_paused",
    "loop",
    "close_timer",
    "close_timeout",
    "response",
)
# `conn` is websockets' sans-I/O ServerProtocol (public API there, still checked).
CONNECTION_METHODS = ("send_close", "data_to_send")
# Attributes of the base the subclass replaces with lighter objects: every method the base
# calls on them must exist on the replacement.
REPLACED = {"queue": SlimQueue, "writable": SlimEvent}

if TYPE_CHECKING:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
else:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:
        # uvicorn before 0.35: fast_path_incompatibility() says so and server/cli.py never
        # hands the class below to uvicorn; this module must still import, for SINK_EXTENSION.
        WebSocketsSansIOProtocol = asyncio.Protocol


def fast_path_incompatibility() -> str | None:
    """Why DirectWebSocketProtocol cannot run on the installed uvicorn; None when it can."""
    try:
        module = importlib.import_module(BASE_MODULE)
    except ImportError as exc:
        return f"{BASE_MODULE} cannot be imported ({exc})"
    base = getattr(module, BASE_CLASS, None)
    if not isinstance(base, type):
        return f"{BASE_MODULE} has no class {BASE_CLASS}"
    return base_incompatibility(base)


def base_incompatibility(base: type) -> str | None:
    """What `base` lacks of the methods and attributes the subclass relies on; None if nothing."""
    missing = [name for name in BASE_METHODS if not callable(getattr(base, name, None))]
    try:
        assigned = _assigned_attributes(base)
    except (OSError, TypeError, SyntaxError) as exc:
        # Without its source (a frozen or compiled install) nothing proves the attributes exist.
        return f"the source of {base.__qualname__} cannot be read to check it ({exc})"
    missing += [name for name in BASE_ATTRIBUTES if name not in assigned]
    for attribute, replacement in REPLACED.items():
        missing += [
            f"{replacement.__name__}.{name} (for {attribute})"
            for name in sorted(_methods_called_on(base, attribute))
            if not callable(getattr(replacement, name, None))
        ]
    connection = _connection_class()
    missing += [
        f"conn.{name}"
        for name in CONNECTION_METHODS
        if connection is None or not callable(getattr(connection, name, None))
    ]
    if missing:
        return f"{base.__qualname__} has no {', '.join(missing)}"
    return None


def _assigned_attributes(base: type) -> set[str]:
    """Names the class or its bases define, or assign on `self` in any method.

    Instance attributes exist only once __init__ (or handle_connect, for `scope`) ran;
    reading the assignments in the source checks them without building a connection.
    """
    names = set(dir(base))
    for klass in base.__mro__:
        if klass.__module__ in ("builtins", "asyncio.protocols"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            while targets:
                target = targets.pop()
                if isinstance(target, ast.Tuple | ast.List):
                    targets += target.elts
                    continue
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    names.add(target.attr)
    return names


def _methods_called_on(base: type, attribute: str) -> set[str]:
    """Names the class or its bases call as `self.<attribute>.<name>(...)`."""
    names: set[str] = set()
    for klass in base.__mro__:
        if klass.__module__ in ("builtins", "asyncio.protocols"):
            continue
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(klass)))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == attribute
                and isinstance(node.func.value.value, ast.Name)
                and node.func.value.value.id == "self"
            ):
                names.add(node.func.attr)
    return names


def _connection_class() -> type | None:
    try:
        from websockets.server import ServerProtocol
    except ImportError:
        return None
    return ServerProtocol


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    on_writable: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # asyncio's Queue and Event preallocate five deques, ~3.8 KB a connection that an
        # idle one never fills (base/slim.py).
        self.queue = SlimQueue()  # type: ignore[assignment]
        self.writable = SlimEvent()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # websockets' parser keeps the handshake request for as long as the connection lives
        # (a local of its generator). Its headers were just copied into the scope and are
        # not read again: emptied, they stop costing every idle connection a kilobyte or more.
        event.headers.clear()
        # The ASGI task was created but has not run yet: the scope can still be extended.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][SINK_EXTENSION] = {"sink": self}

    def start_keepalive(self) -> None:
        # Called once the handshake response is written; uvicorn would keep it (with its
        # headers) for the life of the connection, though it is never read again.
        self.response = None  # type: ignore[assignment]
        super().start_keepalive()

    # ---- the Sink interface used by rooms.session.Session ----------------------

    def sink_writable(self) -> bool:
        return self.writable.is_set() and not self.close_sent and not self.disconnected

    def sink_write(self, wire: bytes) -> None:
        self.transport.write(wire)

    def sink_writelines(self, wires: list[bytes]) -> None:
        self.transport.writelines(wires)

    def sink_close(self, code: int, reason: str) -> None:
        """Start the closing handshake now, whatever is queued, and release the app's reader."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # A peer that reads nothing never lets the close frame out: abort after the timeout
        # (transport.close() would wait for a flush that never comes).
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def shutdown(self) -> None:
        """Server shutdown: 1001 "going away" (reconnect elsewhere) rather than uvicorn's 1012."""
        if self.handshake_complete and not self.close_sent and not self.disconnected:
            self.stop_keepalive()
            self.sink_close(1001, "server shutting down")
            return
        super().shutdown()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_writable is not None:
            self.on_writable()

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_writable = None
        super().connection_lost(exc)
        # The scope's sink is this protocol: a cycle that only a collection could free, and
        # none ever does once server/runtime.py froze it. Nobody reads the sink from here on.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(SINK_EXTENSION, None)
