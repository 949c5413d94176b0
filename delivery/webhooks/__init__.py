"""Provider webhooks: verify first, then parse into provider-neutral DeliveryEvents.

SendGrid::

    verifier.verify_headers(request.headers, body)   # WebhookError -> 403
    events = parse_events(body)                       # MalformedWebhook -> 400

SES through SNS::

    message = await sns_verifier.verify(body)
    if message.is_subscription: confirm by GET message.SubscribeURL
    else: events = parse_ses_notification(decode_message_json(message))
"""

from delivery.webhooks.events import MalformedWebhook, WebhookError
from delivery.webhooks.sendgrid import SendGridSignatureVerifier, parse_events
from delivery.webhooks.ses import parse_ses_notification
from delivery.webhooks.sns import SnsMessage, SnsVerifier, decode_message_json
from schemas.delivery import DeliveryEvent, DeliveryStatus, may_advance

__all__ = [
    "DeliveryEvent",
    "DeliveryStatus",
    "MalformedWebhook",
    "SendGridSignatureVerifier",
    "SnsMessage",
    "SnsVerifier",
    "WebhookError",
    "decode_message_json",
    "may_advance",
    "parse_events",
    "parse_ses_notification",
]
