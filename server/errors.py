"""Every error answer has one shape: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from base.errors import Invalid, RateLimited, ServiceError, Unavailable
from schemas.codec import encode
from schemas.messages import Error, ErrorBody
from storage.db import DatabaseUnavailable, StorageFull

log = logging.getLogger("pitchey.errors")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = encode(Error(error=ErrorBody(code=code, message=message)))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
    if isinstance(exc, Unavailable):
        # The same hint WebSocket error frames carry (retryAfter), in whole seconds.
        services = getattr(request.app.state, "services", None)
        if services is not None:
            base = services.settings.outage_retry_after
            headers = {"Retry-After": str(max(1, round(random.uniform(base, 2 * base))))}
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return error_response(exc.status, exc.code, exc.message, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """A path that forgot to translate an outage still answers it as one: 503, retryable."""
    assert isinstance(exc, DatabaseUnavailable)
    return await service_error(request, as_service_error(exc))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


def as_service_error(exc: DatabaseUnavailable) -> Unavailable:
    if isinstance(exc, StorageFull):
        return Unavailable("storage is full", code="storage_full")
    return Unavailable("storage unavailable")


def decode_error(exc: msgspec.DecodeError) -> ServiceError:
    if isinstance(exc, msgspec.ValidationError):
        return Invalid(str(exc))
    return ServiceError(f"body is not valid JSON: {exc}", code="invalid_json")
