"""Optional Sentry reporting (SENTRY_DSN). Events carry no secrets and no message bodies."""

from __future__ import annotations

import re
from typing import Any

_SECRET_HEADERS = {"authorization", "cookie", "x-twilio-email-event-webhook-signature"}
_TOKEN = re.compile(r"(token=)[^&\s]+")


def scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Remove what must never leave the service: bodies, tokens, credentials, local variables."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            for name in list(headers):
                if name.lower() in _SECRET_HEADERS:
                    headers[name] = "[redacted]"
        for key in ("query_string", "url"):
            if isinstance(request.get(key), str):
                request[key] = _TOKEN.sub(r"\1[redacted]", request[key])
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    # A log call's arguments ("sending to %s", address): the message template stays,
    # the values (addresses, ids, bodies) go.
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        logentry.pop("params", None)
        # "formatted" is the template with the values filled in.
        logentry.pop("formatted", None)
        if isinstance(logentry.get("message"), str):
            logentry["message"] = _TOKEN.sub(r"\1[redacted]", logentry["message"])
    event.pop("extra", None)
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict):
        for crumb in breadcrumbs.get("values", []):
            if isinstance(crumb.get("message"), str):
                crumb["message"] = _TOKEN.sub(r"\1[redacted]", crumb["message"])
            crumb.pop("data", None)
    return event


def init(dsn: str, environment: str) -> None:
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub,  # type: ignore[arg-type]
    )
