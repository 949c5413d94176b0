"""The documentation stays true: every setting and every frame type is written down."""

from __future__ import annotations

import typing

import msgspec

from schemas import frames
from schemas import notifications as _notification_frames  # noqa: F401 (registers its frames)
from schemas.settings import Settings
from tests.servers import ROOT


def test_every_setting_is_documented() -> None:
    text = (ROOT / "README.md").read_text()
    missing = [
        f.name.upper()
        for f in msgspec.structs.fields(Settings)
        if f"`{f.name.upper()}`" not in text
    ]
    assert missing == []


def test_every_frame_type_is_in_the_protocol_doc() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    tags = [cls.__struct_config__.tag for cls in typing.get_args(frames.AnyClientFrame)]
    tags += [
        cls.__struct_config__.tag
        for cls in vars(frames).values()
        if isinstance(cls, type)
        and issubclass(cls, frames.ServerFrame)
        and cls is not frames.ServerFrame
    ]
    missing = [tag for tag in tags if f"`{tag}`" not in text]
    assert missing == []
