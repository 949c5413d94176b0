"""Delivery statuses of an email, the order in which they may change, and the provider-neutral
event every webhook parser returns.

Here rather than in `delivery` because `storage.email` applies events to stored rows.

Progress runs ``queued < sending < sent < deferred < delivered < opened < clicked``;
a status only moves forward, so a late ``deferred`` never undoes ``delivered`` and
an ``open`` arriving after a ``click`` changes nothing.

Outcomes are terminal-ish:

* ``bounced`` and ``spam_report`` may follow any progress status: a complaint comes
  after delivery by nature, and an asynchronous bounce arrives after the receiving
  server first accepted the mail.
* ``dropped``, ``failed`` and ``suppressed`` only before ``delivered``: mail that
  was delivered cannot have been dropped.
* Once terminal, nothing moves, except ``failed`` (our own verdict, e.g. after a
  timeout that may have sent the email) which the provider's evidence overrides with
  ``delivered``, ``opened``, ``clicked``, ``bounced`` or ``spam_report``.
"""

from __future__ import annotations

import enum

import msgspec


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    SPAM_REPORT = "spam_report"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


S = DeliveryStatus
PROGRESS = (S.QUEUED, S.SENDING, S.SENT, S.DEFERRED, S.DELIVERED, S.OPENED, S.CLICKED)
_RANK = {status: rank for rank, status in enumerate(PROGRESS)}
_AFTER_ANY_PROGRESS = frozenset({S.BOUNCED, S.SPAM_REPORT})
_BEFORE_DELIVERY_ONLY = frozenset({S.DROPPED, S.FAILED, S.SUPPRESSED})
_OVERRIDES_FAILED = frozenset({S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.SPAM_REPORT})


def may_advance(current: DeliveryStatus, new: DeliveryStatus) -> bool:
    """Whether an email in ``current`` may take ``new``; see the module docstring."""
    if current == new:
        return False
    if current not in _RANK:
        return current is S.FAILED and new in _OVERRIDES_FAILED
    if new in _RANK:
        return _RANK[new] > _RANK[current]
    if new in _AFTER_ANY_PROGRESS:
        return True
    return new in _BEFORE_DELIVERY_ONLY and _RANK[current] < _RANK[S.DELIVERED]


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    kind: str  # the provider's own event name, e.g. "bounce", "Complaint"
    # None when the event changes no status (processed, unsubscribes): act on ``suppress``.
    status: DeliveryStatus | None
    recipient: str
    occurred_at: float  # epoch seconds
    email_id: str | None = None
    # SendGrid: the X-Message-Id we got at send (sg_message_id up to the first dot).
    # SES: the MessageId returned by SendEmail.
    provider_message_id: str | None = None
    detail: str | None = None
    suppress: bool = False
    bounce_type: str | None = None
    dedupe_key: str = ""
