"""Choosing providers from settings, once, at start."""

from __future__ import annotations

from delivery.providers.base import EmailProvider
from delivery.providers.dev import DevProvider
from schemas.settings import SENDGRID_API_URL

# Provider modules are imported only when configured: aiobotocore is slow to import.


def build_providers(
    *,
    sendgrid_api_key: str | None = None,
    sendgrid_api_url: str = SENDGRID_API_URL,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_region: str = "us-east-1",
    ses_endpoint_url: str | None = None,
    ses_configuration_set: str | None = None,
    sendgrid_timeout: float | None = None,
    sendgrid_connections: int | None = None,
) -> tuple[EmailProvider, EmailProvider | None]:
    """(primary, fallback): SendGrid first when configured, SES next, dev when neither."""
    providers: list[EmailProvider] = []
    if sendgrid_api_key:
        import httpx

        from delivery.providers.aiohttp_transport import DEFAULT_CONNECTIONS, AiohttpTransport
        from delivery.providers.sendgrid import DEFAULT_TIMEOUT, SendGridProvider

        timeout = DEFAULT_TIMEOUT
        if sendgrid_timeout is not None:
            timeout = httpx.Timeout(sendgrid_timeout, connect=min(5.0, sendgrid_timeout))
        # A kept-alive connection for every concurrent send: reconnecting costs more than
        # the send. One pool holds them all; aiohttp does not scan it per request.
        transport = AiohttpTransport(connections=sendgrid_connections or DEFAULT_CONNECTIONS)
        providers.append(
            SendGridProvider(
                sendgrid_api_key, api_url=sendgrid_api_url, timeout=timeout, transport=transport
            )
        )
    if aws_access_key_id and aws_secret_access_key:
        from delivery.providers.ses import SesProvider

        providers.append(
            SesProvider(
                region=aws_region,
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                endpoint_url=ses_endpoint_url,
                configuration_set=ses_configuration_set,
            )
        )
    if not providers:
        return DevProvider(), None
    return providers[0], (providers[1] if len(providers) > 1 else None)
