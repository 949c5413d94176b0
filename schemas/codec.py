"""Reused encoders and decoders (msgspec's advice: build them once)."""

from __future__ import annotations

import msgspec

from schemas.frames import AnyClientFrame, EventHead

encoder = msgspec.json.Encoder()
client_frame_decoder = msgspec.json.Decoder(AnyClientFrame)
event_head_decoder = msgspec.json.Decoder(EventHead)


def encode(obj: object) -> bytes:
    return encoder.encode(obj)
