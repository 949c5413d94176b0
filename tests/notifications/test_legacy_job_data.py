"""Email jobs queued before the camelCase variables still render after the upgrade."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.notifications.legacy import camel_case_data
from delivery.render import TemplateRenderer

# Template data as the workflows, scheduler and worker stored it before the change.
OLD_JOBS: dict[str, dict[str, Any]] = {
    "nda_request": {
        "requester_name": "Bo",
        "pitch_title": "Night",
        "review_url": "https://a.test/r",
    },
    "nda_approved": {"owner_name": "Ann", "pitch_title": "Night", "pitch_url": "https://a.test"},
    "nda_rejected": {"pitch_title": "Night", "reason": ""},
    "investment_received": {
        "investor_name": "Cy",
        "amount": "USD 1,000.00",
        "pitch_title": "Night",
        "dashboard_url": "https://a.test/d",
    },
    "investment_confirmed": {"amount": "USD 1,000.00", "pitch_title": "Night", "reference": "i"},
    "production_update": {
        "pitch_title": "Night",
        "pitch_url": "https://a.test/p",
        "update_title": "Stage: casting",
        "update_summary": "Cast done.",
    },
    "marketplace_alert": {"pitches": [{"title": "Night", "url": "https://a.test/p"}]},
    "unread_messages": {"sender": "Bo", "others": 0, "count": 1, "inbox_url": "https://a.test"},
    "notification_digest": {"period": "today", "notifications": [{"title": "T", "body": "B"}]},
}


@pytest.mark.parametrize("template", sorted(OLD_JOBS))
def test_a_job_queued_with_snake_case_data_still_renders(template: str) -> None:
    data = camel_case_data(template, {**OLD_JOBS[template], "recipient_name": "Ann"})

    rendered = TemplateRenderer().render(template, data)

    assert rendered.subject and "Hi Ann" in rendered.text
