"""What a push carries to the service worker: a small JSON object, always under 4 KB.

(A module of its own, beside `delivery.push`, so notifications build pushes without
importing the push pipeline.)

`{title, body, path, tag, type, ...}`: the worker shows `title` and `body`, replaces an
earlier notification with the same `tag`, and on click opens APP_URL + `path` (a path,
never a full URL, so a push cannot send the user to another site).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

# Push services accept at most 4096 bytes of body. With one aes128gcm record the 86-byte
# header (salt, record size, key id) and the 17 bytes of delimiter and tag leave this much.
MAX_BODY = 4096
MAX_PLAINTEXT = MAX_BODY - 86 - 17

_encode = msgspec.json.Encoder().encode

TITLE_CHARS = 120
BODY_CHARS = 500


def build(
    *, title: str, body: str, path: str, tag: str, kind: str, extra: dict[str, str] | None = None
) -> str:
    payload: dict[str, Any] = {
        "title": title[:TITLE_CHARS],
        "body": body[:BODY_CHARS],
        "path": path,
        "tag": tag,
        "type": kind,
        **(extra or {}),
    }
    raw = _encode(payload)
    # Emoji and other wide characters may still make it long: cut the body until it fits.
    while len(raw) > MAX_PLAINTEXT and payload["body"]:
        payload["body"] = payload["body"][: len(payload["body"]) // 2]
        raw = _encode(payload)
    return raw.decode()


def app_path(url: object, app_url: str, default: str) -> str:
    """The path of `url` inside the web app: a relative path as it is, an absolute URL
    only when it is on APP_URL's origin; anything else is the default."""
    if not isinstance(url, str) or not url or len(url) > 1000:
        return default
    if url.startswith("/") and not url.startswith("//"):
        return url
    app = urlsplit(app_url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return default
    if (parts.scheme, parts.netloc) != (app.scheme, app.netloc):
        return default
    path = parts.path or "/"
    base = app.path.rstrip("/")
    if base and path.startswith(base):
        path = path[len(base) :] or "/"
    return path + (f"?{parts.query}" if parts.query else "")
