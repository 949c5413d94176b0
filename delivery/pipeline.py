"""Builds the email pipeline from settings, once, at start: service, providers, worker."""

from __future__ import annotations

from pathlib import Path

from delivery.email import EmailService
from delivery.failover import ProviderRouter, RetryPolicy
from delivery.intake import WebhookIntake
from delivery.providers import build_providers
from delivery.providers.base import MAX_MESSAGE_BYTES
from delivery.render import TemplateRenderer
from delivery.worker import EmailWorker
from rooms.attachments import open_email_bucket
from rooms.ratelimit import RateLimiter
from schemas.settings import Settings
from storage.db import Database
from storage.email import EmailStore


def build_email(
    settings: Settings, db: Database, limiter: RateLimiter
) -> tuple[EmailService, EmailWorker]:
    """The service (request side) and a started worker; stop the worker at shutdown."""
    store = EmailStore(db)
    renderer = TemplateRenderer(
        Path(settings.email_template_dir) if settings.email_template_dir else None,
        ttl_seconds=settings.email_template_ttl,
    )
    primary, fallback = build_providers(
        sendgrid_api_key=settings.sendgrid_api_key,
        sendgrid_api_url=settings.sendgrid_api_url,
        sendgrid_timeout=settings.sendgrid_timeout,
        sendgrid_connections=settings.email_send_concurrency,
        aws_access_key_id=settings.aws_ses_access_key,
        aws_secret_access_key=settings.aws_ses_secret_key,
        aws_region=settings.aws_ses_region,
        ses_endpoint_url=settings.aws_ses_endpoint_url or None,
    )
    # Accepted emails must fit the primary provider (a failover to SES may still refuse
    # one over its smaller limit); EMAIL_MAX_MESSAGE_BYTES may only lower the limit.
    limits = [MAX_MESSAGE_BYTES.get(primary.name), settings.email_max_message_bytes or None]
    service = EmailService(
        store=store,
        renderer=renderer,
        from_email=settings.sendgrid_from_email,
        from_name=settings.sendgrid_from_name,
        provider=primary.name,
        max_message_bytes=min((n for n in limits if n is not None), default=None),
    )
    service.webhooks = WebhookIntake(
        store,
        sendgrid_public_key=settings.sendgrid_webhook_public_key,
        sns_topic_arns=settings.ses_sns_topic_arns,
        sns_cert_host_pattern=settings.ses_sns_cert_host_pattern,
        require_topic_allowlist=not settings.development,
    )
    policy = RetryPolicy(
        base_seconds=settings.email_retry_base,
        cap_seconds=settings.email_retry_cap,
        max_attempts=settings.email_max_attempts,
        breaker_threshold=settings.email_breaker_threshold,
        cooldown_seconds=settings.email_breaker_cooldown,
    )
    ses_sender = None
    if settings.aws_ses_from_email:
        ses_sender = (settings.aws_ses_from_email, settings.aws_ses_from_name or None)
    worker = EmailWorker(
        store=store,
        router=ProviderRouter(primary, fallback, policy),
        limiter=limiter,
        batch_size=settings.email_batch_size,
        batch_timeout=settings.email_batch_timeout,
        concurrency=settings.email_send_concurrency,
        claim_ttl=settings.email_claim_ttl,
        per_minute=settings.email_rate_limit_per_minute,
        per_hour=settings.email_rate_limit_per_hour,
        ses_sender=ses_sender,
        attachments=open_email_bucket(settings, db),
    )
    service.on_enqueued = worker.notify
    worker.start()
    return service, worker
