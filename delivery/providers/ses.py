"""Amazon SES v2 SendEmail through aiobotocore."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from delivery.providers.base import (
    SES_MAX_MESSAGE_BYTES,
    Address,
    ErrorKind,
    OutgoingEmail,
    ProviderError,
    SendResult,
)
from delivery.providers.mime import build_mime, format_address

_RATE_LIMITED = {"TooManyRequestsException", "ThrottlingException", "LimitExceededException"}
_AUTH = {
    "SendingPausedException",
    "AccountSuspendedException",
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
}
_REJECTED = {
    "MessageRejected",
    "BadRequestException",
    "MailFromDomainNotVerifiedException",
    "NotFoundException",
}
# SES tag values allow only these characters; anything else would fail the whole send.
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_UTF8 = "UTF-8"


class TooLarge(ValueError):
    """The raw message is over SES's size limit: refused before it is uploaded."""


def _classify(exc: ClientError) -> ErrorKind:
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _RATE_LIMITED or status == 429:
        return ErrorKind.RATE_LIMITED
    if code in _AUTH or status in (401, 403):
        return ErrorKind.AUTH
    if code in _REJECTED:
        return ErrorKind.REJECTED
    if status == 408 or status >= 500:
        return ErrorKind.RETRY
    return ErrorKind.REJECTED


def _content(email: OutgoingEmail) -> dict[str, Any]:
    if email.attachments or email.headers:
        raw = build_mime(email)
        if len(raw) > SES_MAX_MESSAGE_BYTES:
            raise TooLarge(
                f"message is {len(raw)} bytes as MIME (attachments in base64); "
                f"SES accepts at most {SES_MAX_MESSAGE_BYTES}"
            )
        return {"Raw": {"Data": raw}}
    body: dict[str, Any] = {}
    if email.text:
        body["Text"] = {"Data": email.text, "Charset": _UTF8}
    if email.html:
        body["Html"] = {"Data": email.html, "Charset": _UTF8}
    return {"Simple": {"Subject": {"Data": email.subject, "Charset": _UTF8}, "Body": body}}


def build_request(email: OutgoingEmail, configuration_set: str | None) -> dict[str, Any]:
    """Keyword arguments for sesv2 ``send_email``."""
    destination: dict[str, list[str]] = {"ToAddresses": [format_address(a) for a in email.to]}
    if email.cc:
        destination["CcAddresses"] = [format_address(a) for a in email.cc]
    if email.bcc:
        destination["BccAddresses"] = [format_address(a) for a in email.bcc]
    request: dict[str, Any] = {
        "FromEmailAddress": format_address(Address(email.from_email, email.from_name)),
        "Destination": destination,
        "Content": _content(email),
        "EmailTags": [{"Name": "email_id", "Value": _TAG_UNSAFE.sub("_", email.id)}],
    }
    if email.reply_to is not None:
        request["ReplyToAddresses"] = [format_address(email.reply_to)]
    if configuration_set:
        request["ConfigurationSetName"] = configuration_set
    return request


class SesProvider:
    """Keeps one SES client open; it is created on first send and closed by ``aclose``."""

    name = "ses"

    def __init__(
        self,
        *,
        region: str,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        endpoint_url: str | None = None,
        configuration_set: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ) -> None:
        self._region = region
        self._key_id = aws_access_key_id
        self._secret = aws_secret_access_key
        self._endpoint_url = endpoint_url
        self._configuration_set = configuration_set
        # Retries belong to the router, which can also fail over; botocore must not hide them.
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._client is None:
                self._client = await self._stack.enter_async_context(
                    get_session().create_client(
                        "sesv2",
                        region_name=self._region,
                        endpoint_url=self._endpoint_url,
                        aws_access_key_id=self._key_id,
                        aws_secret_access_key=self._secret,
                        config=self._config,
                    )
                )

    async def send(self, email: OutgoingEmail) -> SendResult:
        try:
            request = build_request(email, self._configuration_set)
        except ValueError as exc:  # header injection, unencodable header, or TooLarge
            raise ProviderError(ErrorKind.REJECTED, str(exc), provider=self.name) from exc
        if self._client is None:
            await self.start()
        response = await self._call(request)
        return SendResult(self.name, response.get("MessageId"))

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            response: dict[str, Any] = await self._client.send_email(**request)
            return response
        except ClientError as exc:
            kind = _classify(exc)
            error = exc.response.get("Error", {})
            raise ProviderError(
                kind,
                f"{error.get('Code', '')}: {error.get('Message', '')}",
                provider=self.name,
                status=exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            ) from exc
        except ReadTimeoutError as exc:
            # Sent but unanswered: SES may have accepted it, so no failover.
            raise ProviderError(ErrorKind.AMBIGUOUS, str(exc), provider=self.name) from exc
        except ConnectionClosedError as exc:
            raise ProviderError(ErrorKind.AMBIGUOUS, str(exc), provider=self.name) from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise ProviderError(ErrorKind.RETRY, str(exc), provider=self.name) from exc
        except NoCredentialsError as exc:
            raise ProviderError(ErrorKind.AUTH, str(exc), provider=self.name) from exc
        except ParamValidationError as exc:
            raise ProviderError(ErrorKind.REJECTED, str(exc), provider=self.name) from exc
        except BotoCoreError as exc:
            raise ProviderError(ErrorKind.RETRY, str(exc), provider=self.name) from exc

    async def aclose(self) -> None:
        async with self._lock:
            await self._stack.aclose()
            self._client = None
