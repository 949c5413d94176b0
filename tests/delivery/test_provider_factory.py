"""build_providers picks providers from plain settings; the dev provider accepts all."""

from __future__ import annotations

from delivery.providers import build_providers
from delivery.providers.dev import DevProvider
from tests.delivery.samples import make_email


async def test_sendgrid_first_and_ses_as_fallback_when_both_are_configured() -> None:
    primary, fallback = build_providers(
        sendgrid_api_key="SG.x", aws_access_key_id="id", aws_secret_access_key="secret"
    )

    assert (primary.name, fallback and fallback.name) == ("sendgrid", "ses")
    await primary.aclose()
    if fallback is not None:
        await fallback.aclose()


async def test_ses_alone_has_no_fallback() -> None:
    primary, fallback = build_providers(aws_access_key_id="id", aws_secret_access_key="secret")

    assert (primary.name, fallback) == ("ses", None)
    await primary.aclose()


async def test_dev_provider_when_nothing_is_configured_accepts_and_keeps_emails() -> None:
    primary, fallback = build_providers()
    assert isinstance(primary, DevProvider) and fallback is None

    result = await primary.send(make_email("dev-1"))

    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("dev-")
    assert primary.sent[-1][1].id == "dev-1"
