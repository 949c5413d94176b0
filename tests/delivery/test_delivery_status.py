"""may_advance: statuses only move forward."""

from __future__ import annotations

import pytest

from schemas.delivery import DeliveryStatus as S
from schemas.delivery import may_advance


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.QUEUED, S.SENDING),
        (S.SENT, S.DEFERRED),
        (S.DEFERRED, S.DELIVERED),
        (S.DELIVERED, S.OPENED),
        (S.OPENED, S.CLICKED),
        (S.SENT, S.CLICKED),
        (S.DELIVERED, S.SPAM_REPORT),
        (S.CLICKED, S.SPAM_REPORT),
        (S.DELIVERED, S.BOUNCED),
        (S.DEFERRED, S.DROPPED),
        (S.SENDING, S.FAILED),
        (S.FAILED, S.DELIVERED),
    ],
)
def test_allowed_moves(current: S, new: S) -> None:
    assert may_advance(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.DELIVERED, S.DEFERRED),
        (S.CLICKED, S.OPENED),
        (S.DELIVERED, S.SENT),
        (S.DELIVERED, S.DELIVERED),
        (S.DELIVERED, S.DROPPED),
        (S.BOUNCED, S.DELIVERED),
        (S.SPAM_REPORT, S.OPENED),
        (S.DROPPED, S.DELIVERED),
        (S.SUPPRESSED, S.SENT),
        (S.FAILED, S.DEFERRED),
    ],
)
def test_refused_moves(current: S, new: S) -> None:
    assert not may_advance(current, new)
