"""REST bodies and answers of the attachment routes (camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from schemas.messages import Base, Id


class AttachmentInfo(Base, kw_only=True):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str


class PresignUpload(Base, kw_only=True):
    conversation_id: Id
    filename: Annotated[str, Meta(min_length=1, max_length=1000)]
    content_type: Annotated[str, Meta(min_length=1, max_length=200)]
    size: Annotated[int, Meta(gt=0)]


class PresignedUpload(Base, kw_only=True):
    id: str
    url: str
    method: str
    # Headers the PUT must carry exactly as given (they are part of the signature).
    headers: dict[str, str]
    expires_in: int
