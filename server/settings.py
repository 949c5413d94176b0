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
from urllib.parse import urlsplit

import msgspec

from delivery.push.vapid import VapidConfig, VapidError, check
from schemas.settings import Settings
from storage.private import private_dir, write_private

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
    if "database_url" not in raw and "data_dir" in raw:
        # DATA_DIR holds the SQLite file unless DATABASE_URL says otherwise.
        raw["database_url"] = f"sqlite:///{Path(str(raw['data_dir'])) / 'pitchey.db'}"
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(str(exc))) from None
    if settings.environment == "production" and not settings.jwt_secret:
        raise SettingsError("JWT_SECRET must be set when ENVIRONMENT=production")
    _refuse_weak(settings)
    _refuse_bad_vapid(settings)
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


# HS256 with a short secret can be brute-forced offline from any one token.
MIN_PRODUCTION_SECRET_BYTES = 32


def _refuse_weak(settings: Settings) -> None:
    """Settings that would run, but unsafely or not as the operator meant."""
    production = settings.environment == "production"
    if production and len(settings.jwt_secret.encode()) < MIN_PRODUCTION_SECRET_BYTES:
        raise SettingsError(
            f"JWT_SECRET must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes when "
            "ENVIRONMENT=production (e.g. `openssl rand -hex 32`)"
        )
    _refuse_bad_cluster(settings)
    sendgrid = bool(settings.sendgrid_api_key)
    ses_keys = {
        "AWS_SES_ACCESS_KEY": settings.aws_ses_access_key,
        "AWS_SES_SECRET_KEY": settings.aws_ses_secret_key,
    }
    ses = all(ses_keys.values())
    choice = settings.email_provider
    if choice == "sendgrid" and not sendgrid:
        raise SettingsError("EMAIL_PROVIDER=sendgrid needs SENDGRID_API_KEY")
    if choice == "ses" and not ses:
        missing = ", ".join(name for name, value in ses_keys.items() if not value)
        raise SettingsError(f"EMAIL_PROVIDER=ses needs {missing}")
    if choice == "dev" and (sendgrid or any(ses_keys.values())):
        raise SettingsError(
            "EMAIL_PROVIDER=dev, but provider keys are set (SENDGRID_API_KEY or AWS_SES_*): "
            "unset them or name the provider"
        )
    if production and choice == "" and not (sendgrid or ses):
        raise SettingsError(
            "EMAIL_PROVIDER: no email provider is configured (SENDGRID_API_KEY or "
            "AWS_SES_ACCESS_KEY and AWS_SES_SECRET_KEY); set EMAIL_PROVIDER=dev to run "
            "production without sending email"
        )


def _refuse_bad_cluster(settings: Settings) -> None:
    if not settings.redis_cluster_mode:
        return
    if not settings.redis_url:
        raise SettingsError("REDIS_CLUSTER=true needs REDIS_URL (any node of the cluster)")
    url = settings.redis_node_url
    if not url.startswith(("redis://", "rediss://")):
        raise SettingsError(
            "REDIS_CLUSTER=true needs REDIS_URL to be redis://, rediss:// or redis+cluster://"
        )
    path = urlsplit(url).path.strip("/")
    if path not in ("", "0"):
        raise SettingsError(f"REDIS_URL: a Redis Cluster has only database 0, not {path!r}")
    if "{" in settings.redis_prefix or "}" in settings.redis_prefix:
        # A brace in the prefix would become every key's hash tag: one slot for everything.
        raise SettingsError("REDIS_PREFIX must not contain { or } with a Redis Cluster")


def _refuse_bad_vapid(settings: Settings) -> None:
    """Push is off without keys; with them, all three settings must make a usable sender."""
    keys = {
        "VAPID_PUBLIC_KEY": settings.vapid_public_key,
        "VAPID_PRIVATE_KEY": settings.vapid_private_key,
    }
    if not any(keys.values()):
        return
    missing = [name for name, value in keys.items() if not value]
    if not settings.vapid_subject:
        missing.append("VAPID_SUBJECT")
    if missing:
        raise SettingsError(
            f"web push needs {', '.join(missing)} too (`pitchey-comms vapid` prints a key pair)"
        )
    try:
        check(
            VapidConfig(
                settings.vapid_public_key, settings.vapid_private_key, settings.vapid_subject
            )
        )
    except VapidError as exc:
        raise SettingsError(str(exc)) from None


def _development_secret(settings: Settings) -> str:
    """A secret kept in the data folder, so tokens stay valid across restarts."""
    path = Path(settings.data_dir) / "jwt_secret"
    if path.exists():
        secret = path.read_text().strip()
    else:
        private_dir(path.parent)
        secret = secrets.token_urlsafe(48)
        write_private(path, secret.encode())
    log.warning(
        "JWT_SECRET is not set: using a development secret kept in %s. "
        "Set JWT_SECRET in production.",
        path,
    )
    return secret
