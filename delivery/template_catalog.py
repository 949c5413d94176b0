"""The variables of every built-in email template: one declaration for the renderer's
check, GET /api/email/templates and the README table (tests/email checks they agree).

Variables are camelCase like the rest of the API. Links are built from APP_URL by the
renderer, which adds ``appUrl``, ``preferencesUrl`` and (for mail that may be
unsubscribed from) ``unsubscribeUrl`` to every template's data: callers never pass them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TemplateVariables:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


# Given by the renderer, never by a caller (a caller's value is replaced).
PROVIDED = ("appUrl", "preferencesUrl", "unsubscribeUrl")

BUILTIN: dict[str, TemplateVariables] = {
    "welcome": TemplateVariables(("name",), ("url",)),
    "nda_request": TemplateVariables(("name", "requesterName", "pitchTitle"), ("message", "url")),
    "nda_approved": TemplateVariables(("name", "ownerName", "pitchTitle"), ("url",)),
    "nda_rejected": TemplateVariables(("name", "ownerName", "pitchTitle"), ("reason",)),
    "investment_received": TemplateVariables(
        ("name", "investorName", "pitchTitle", "amount", "currency"), ("url",)
    ),
    "investment_confirmed": TemplateVariables(
        ("name", "pitchTitle", "amount", "currency"), ("reference", "url")
    ),
    "production_update": TemplateVariables(
        ("name", "pitchTitle", "stage"), ("previousStage", "summary", "url")
    ),
    # items: [{pitchTitle, genre?, url?}], may be empty.
    "marketplace_alert": TemplateVariables(("name", "items"), ("alertName",)),
    # senders: [{name, count}]; messages: [{sender, conversation, preview}], quoted only
    # from conversations where the recipient has written.
    "unread_messages": TemplateVariables(
        ("name", "count"), ("sender", "others", "senders", "messages", "url")
    ),
    # items: [{title, message, createdAt, url?}], may be empty.
    "notification_digest": TemplateVariables(("name", "items"), ("period",)),
    # The generic template of POST /api/notifications/send.
    "notification": TemplateVariables(("name", "title", "message"), ("url",)),
}

# Mail a recipient must not miss: it carries no List-Unsubscribe (see delivery/email.py).
CRITICAL_TEMPLATES = frozenset(
    {"nda_request", "nda_approved", "nda_rejected", "investment_received", "investment_confirmed"}
)

# The shape of each list item, for the README and the API listing.
ITEM_SHAPES: dict[str, str] = {
    "marketplace_alert": "items: list of {pitchTitle, genre?, url?}",
    "unread_messages": (
        "senders: list of {name, count}; messages: list of {sender, conversation, preview}"
    ),
    "notification_digest": "items: list of {title, message, createdAt, url?}",
}


def _code(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "-"


def readme_table() -> str:
    """The README's template table, generated from BUILTIN."""
    lines = [
        "| Template | Required variables | Optional variables |",
        "|---|---|---|",
    ]
    for name, variables in BUILTIN.items():
        optional = _code(variables.optional)
        if name in ITEM_SHAPES:
            optional += f" ({ITEM_SHAPES[name]})"
        lines.append(f"| `{name}` | {_code(variables.required)} | {optional} |")
    return "\n".join(lines)
