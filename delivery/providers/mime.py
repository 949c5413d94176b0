"""Building a MIME message from an OutgoingEmail, for providers that take raw mail."""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage

from delivery.providers.base import Address, OutgoingEmail

# Lets provider events be traced back to our row even when tags are unavailable.
EMAIL_ID_HEADER = "X-Pitchey-Email-Id"


def format_address(address: Address) -> str:
    # formataddr quotes and RFC 2047-encodes names, so "Doe, Jane" or "Zoë" stay one address.
    return email.utils.formataddr((address.name or "", address.email))


def build_mime(message: OutgoingEmail) -> bytes:
    """RFC 5322 bytes; Bcc is left out of the headers and must go in the envelope.

    Raises ValueError if a header value contains CR or LF (header injection).
    """
    mime = EmailMessage(policy=email.policy.SMTP)
    mime["From"] = format_address(Address(message.from_email, message.from_name))
    mime["To"] = ", ".join(format_address(a) for a in message.to)
    if message.cc:
        mime["Cc"] = ", ".join(format_address(a) for a in message.cc)
    if message.reply_to is not None:
        mime["Reply-To"] = format_address(message.reply_to)
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(localtime=False)
    mime[EMAIL_ID_HEADER] = message.id
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text or "")
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mime.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return mime.as_bytes()
