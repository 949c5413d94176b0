"""Email jobs queued before template variables became camelCase.

A job stores its template data when it is queued and may wait hours (quiet hours,
digests) or be retried after an upgrade; without this, such a job would fail for good
on a missing variable. New jobs never need it; it can go once no job predates the change.
"""

from __future__ import annotations

from typing import Any

_RENAMED = {
    "recipient_name": "name",
    "requester_name": "requesterName",
    "owner_name": "ownerName",
    "investor_name": "investorName",
    "pitch_title": "pitchTitle",
    "alert_name": "alertName",
    "update_summary": "summary",
    "review_url": "url",
    "pitch_url": "url",
    "dashboard_url": "url",
    "inbox_url": "url",
}
_LISTS = ("pitches", "notifications", "update_title")


def camel_case_data(template: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the old snake_case variables under their camelCase names."""
    if not any(key in data for key in (*_RENAMED, *_LISTS)):
        return data
    out = {_RENAMED.get(key, key): value for key, value in data.items()}
    if "pitches" in out:
        out["items"] = [
            {("pitchTitle" if k == "title" else k): v for k, v in pitch.items()}
            for pitch in out.pop("pitches")
        ]
    if "notifications" in out:
        out["items"] = [
            {"title": n.get("title", ""), "message": n.get("body", ""), "createdAt": ""}
            for n in out.pop("notifications")
        ]
    if "update_title" in out:
        out["stage"] = str(out.pop("update_title")).removeprefix("Stage: ")
    # Old jobs did not carry these; the amount was already formatted with its currency.
    if template == "nda_rejected":
        out.setdefault("ownerName", "The pitch owner")
    if template.startswith("investment_"):
        out.setdefault("currency", "")
    return out
