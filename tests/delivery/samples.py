"""Sample emails and shared constants for the delivery tests."""

from __future__ import annotations

from delivery.providers.base import Address, OutgoingEmail

SENDGRID_KEY = "SG.test-key"
FROM = "noreply@pitchey.test"


def make_email(email_id: str = "email-1", **changes: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "id": email_id,
        "from_email": FROM,
        "from_name": "Pitchey",
        "to": [Address("ann@example.com", "Ann Lee")],
        "subject": "Your NDA was approved",
        "text": "Hello Ann",
        "html": "<p>Hello Ann</p>",
    }
    fields.update(changes)
    return OutgoingEmail(**fields)  # type: ignore[arg-type]
