"""What a file is, by its first bytes: a claimed content type must match its magic number.

A name or a header is what the client says; the bytes are what a browser or a
viewer will act on. Types with no signature here can still be allowed by
ATTACHMENT_ALLOWED_TYPES; they are then accepted on the client's word and always
served as downloads with `nosniff`.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

# Enough for every signature below and for a fair look at text.
HEAD_BYTES = 4096

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# content type -> the family its bytes must show
FAMILY = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "application/pdf": "pdf",
    "application/zip": "zip",
    DOCX: "zip",
    XLSX: "zip",
    PPTX: "zip",
    "video/mp4": "isobmff",
    "video/quicktime": "isobmff",
    "text/plain": "text",
    "text/csv": "text",
}

# The default allow-list (ATTACHMENT_ALLOWED_TYPES empty): every type we can verify.
DEFAULT_ALLOWED = tuple(FAMILY)

_EXTRA_EXTENSIONS = {".docx": DOCX, ".xlsx": XLSX, ".pptx": PPTX, ".mov": "video/quicktime"}


def family_of(head: bytes) -> str | None:
    """The family the bytes belong to, or None when they match no known signature."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "isobmff"
    if _is_text(head):
        return "text"
    return None


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the head is still text.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def guess_type(filename: str) -> str | None:
    lower = filename.lower()
    for ext, kind in _EXTRA_EXTENSIONS.items():
        if lower.endswith(ext):
            return kind
    guessed, _ = mimetypes.guess_type(lower, strict=False)
    return guessed


def claimed_type(header: str | None, filename: str) -> str | None:
    """What the client says: a specific Content-Type header, else the name's extension."""
    declared = (header or "").split(";", 1)[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return declared
    return guess_type(filename)


def matches(content_type: str, head: bytes) -> bool:
    """Do the bytes agree with the claimed type? Types without a signature pass."""
    expected = FAMILY.get(content_type)
    if expected is None:
        return True
    return family_of(head) == expected


# Characters that mean something to a file system, a shell or a header parameter.
_UNSAFE = re.compile(r'[\\/:*?"<>|;%`$]+')


def sanitise_filename(name: str | None, fallback: str = "file") -> str:
    """A name safe on every file system and in headers: no path, controls or leading dots."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        return fallback
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot and len(ext) <= 9 else name[:200]
    return name
