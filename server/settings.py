"""Settings: read from the environment once, at start, and validated.

Each field of `schemas.settings.Settings` is read from the upper-cased
variable of the same name (DATABASE_URL, JWT_SECRET, REDIS_URL, ...). A bad
value stops the start with the variable's name and what was expected.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from schemas.settings import Settings

log = logging.getLogger("pitchey.settings")


class SettingsError(Exception):
    pass


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        value = env.get(field.name.upper())
        if value is None or value == "":
            continue
        if field.type == tuple[str, ...]:
            raw[field.name] = tuple(part.strip() for part in value.split(",") if part.strip())
        else:
            raw[field.name] = value
    raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(str(exc))) from None
    if settings.environment == "production" and not settings.jwt_secret:
        raise SettingsError("JWT_SECRET must be set when ENVIRONMENT=production")
    if not settings.jwt_secret:
        settings = msgspec.structs.replace(settings, jwt_secret=_development_secret(settings))
    return settings


def warn_about(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Warnings about what the settings leave out; called once per serving process."""
    env = os.environ if environ is None else environ
    if env.get("UPSTASH_REDIS_REST_URL") and not settings.redis_url:
        # The seed ran on Upstash's REST API; this service speaks the Redis protocol.
        log.warning(
            "UPSTASH_REDIS_REST_URL is set but REDIS_URL is not: this service talks to Redis "
            "over its own protocol, not Upstash's REST API, and runs without Redis now "
            "(one process, state in memory). Set REDIS_URL to the database's rediss:// URL "
            "(Upstash console: 'Connect', the redis-cli/TCP tab)."
        )


def _explain(message: str) -> str:
    match = re.search(r"at `\$\.(\w+)`", message)
    if not match:
        return f"invalid settings: {message}"
    name = match.group(1).upper()
    reason = message[: match.start()].rstrip(" -")
    return f"invalid value for {name}: {reason}"


def _development_secret(settings: Settings) -> str:
    """A secret kept in the data folder, so tokens stay valid across restarts."""
    path = Path(settings.data_dir) / "jwt_secret"
    if path.exists():
        secret = path.read_text().strip()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
    log.warning(
        "JWT_SECRET is not set: using a development secret kept in %s. "
        "Set JWT_SECRET in production.",
        path,
    )
    return secret
