"""pitchey-comms.d.ts stays true to pitchey-comms.js: every method and every event is declared."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from schemas import frames
from schemas import notifications as notification_frames
from tests.servers import ROOT, ServerProcess

STATIC = ROOT / "server" / "static"
# Server frames the client consumes itself instead of dispatching (`skipped` only moves a seq).
NOT_DISPATCHED = {"pong", "presence_change", "skipped"}
# Events the client makes up itself.
CLIENT_EVENTS = {"state", "disconnected"}


def declared_events() -> set[str]:
    text = (STATIC / "pitchey-comms.d.ts").read_text()
    body = text.split("export interface PitcheyClientEventMap {", 1)[1].split("\n}", 1)[0]
    return set(re.findall(r"^  (\w+): CustomEvent<", body, re.MULTILINE))


def test_every_event_the_client_dispatches_is_declared_with_its_detail() -> None:
    tags = {
        cls.__struct_config__.tag
        for module in (frames, notification_frames)
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, frames.ServerFrame)
        and cls is not frames.ServerFrame
    }
    js = (STATIC / "pitchey-comms.js").read_text()
    emitted = set(re.findall(r'_emit\("(\w+)"', js))

    assert declared_events() == (tags - NOT_DISPATCHED) | CLIENT_EVENTS
    assert emitted <= declared_events()


def test_every_public_method_is_declared() -> None:
    js = (STATIC / "pitchey-comms.js").read_text()
    methods = set(re.findall(r"^  (?:async )?([a-z]\w*)\(", js, re.MULTILINE)) - {"constructor"}
    dts = (STATIC / "pitchey-comms.d.ts").read_text()

    missing = [m for m in sorted(methods) if not re.search(rf"^  {m}\(", dts, re.MULTILINE)]
    assert methods and missing == []


def test_the_declarations_are_served_beside_the_module(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server()

    answer = httpx.get(f"{server.url}/static/pitchey-comms.d.ts")

    assert answer.status_code == 200
    assert "export declare class PitcheyClient extends EventTarget" in answer.text
    assert answer.headers["content-type"].startswith("application/typescript")
