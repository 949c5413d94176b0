"""Email providers behind one Protocol; ``build_providers`` picks them from settings."""

from delivery.providers.base import (
    Address,
    Attachment,
    EmailProvider,
    ErrorKind,
    OutgoingEmail,
    ProviderError,
    SendResult,
)
from delivery.providers.factory import build_providers

__all__ = [
    "Address",
    "Attachment",
    "EmailProvider",
    "ErrorKind",
    "OutgoingEmail",
    "ProviderError",
    "SendResult",
    "build_providers",
]
