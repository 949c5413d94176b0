"""Preferences: the policy matrix as pure calls with a fixed clock, and a few cells end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from delivery.notifications.preferences import (
    CRITICAL_TYPES,
    default_preference,
    plan_email,
    quiet_until,
)
from delivery.notifications.scheduler import window_start
from schemas.notifications import QuietHours, TypePreference
from tests.notifications.conftest import person, request_nda, wait_for_emails, wait_status
from tests.servers import ServerProcess
from tests.standins.sendgrid import SendGridStandin

PARIS = ZoneInfo("Europe/Paris")
NIGHT = QuietHours(start="22:00", end="07:00")
# 23:30 in Paris (21:30 UTC in winter): inside the night's quiet hours.
LATE = int(datetime(2026, 1, 15, 21, 30, tzinfo=UTC).timestamp() * 1000)
# 12:00 in Paris: outside them.
NOON = int(datetime(2026, 1, 15, 11, 0, tzinfo=UTC).timestamp() * 1000)
SEVEN_PARIS = int(datetime(2026, 1, 16, 6, 0, tzinfo=UTC).timestamp() * 1000)

TYPES = ["nda_request", "investment_confirmed", "production_update", "marketplace_alert"]
FREQUENCIES = ["instant", "daily", "weekly", "off"]


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("email", [True, False])
@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("now", [NOON, LATE], ids=["outside-quiet", "inside-quiet"])
def test_the_email_policy_matrix(kind: str, email: bool, frequency: str, now: int) -> None:
    preference = TypePreference(in_app=True, email=email, frequency=frequency)  # type: ignore[arg-type]
    critical = kind in CRITICAL_TYPES
    plan = plan_email(preference, critical, NIGHT, PARIS, now)
    if not email or frequency == "off":
        # Switched off explicitly: even critical types stop.
        assert (plan.send, plan.status) == (False, "skipped_preference")
    elif critical:
        # Never digested, never held by quiet hours.
        assert (plan.send, plan.due_at, plan.status) == (True, now, "queued")
    elif frequency in ("daily", "weekly"):
        assert (plan.send, plan.status) == (False, f"digest_{frequency}")
    elif now == LATE:
        assert (plan.send, plan.due_at, plan.status) == (True, SEVEN_PARIS, "delayed")
    else:
        assert (plan.send, plan.due_at, plan.status) == (True, now, "queued")


def test_defaults_make_critical_types_instant_and_news_digested() -> None:
    for kind in CRITICAL_TYPES:
        assert default_preference(kind).frequency == "instant"
        assert default_preference(kind).critical
    assert default_preference("production_update").frequency == "daily"
    assert default_preference("unread_messages").in_app is False
    assert default_preference("anything_else").frequency == "instant"


def test_quiet_hours_within_one_day_and_across_midnight() -> None:
    lunch = QuietHours(start="12:00", end="14:00")
    assert quiet_until(lunch, PARIS, NOON) == NOON + 2 * 3600 * 1000
    assert quiet_until(lunch, PARIS, LATE) is None
    assert quiet_until(NIGHT, PARIS, NOON) is None
    assert quiet_until(QuietHours(start="09:00", end="09:00"), PARIS, NOON) is None


def test_quiet_hours_end_on_local_time_across_a_dst_change() -> None:
    # Night of 28-29 March 2026: Paris moves from UTC+1 to UTC+2 at 02:00.
    before = int(datetime(2026, 3, 28, 22, 0, tzinfo=UTC).timestamp() * 1000)
    ends = quiet_until(NIGHT, PARIS, before)
    assert ends == int(datetime(2026, 3, 29, 5, 0, tzinfo=UTC).timestamp() * 1000)


def test_digest_windows_start_at_the_local_hour() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # 2026-01-15 10:00 in Tokyo (Thursday): the daily window began at 08:00 today,
    # the weekly one on Monday 12 January at 08:00.
    now = int(datetime(2026, 1, 15, 1, 0, tzinfo=UTC).timestamp() * 1000)
    assert window_start("daily", tokyo, 8, now) == int(
        datetime(2026, 1, 14, 23, 0, tzinfo=UTC).timestamp() * 1000
    )
    assert window_start("weekly", tokyo, 8, now) == int(
        datetime(2026, 1, 11, 23, 0, tzinfo=UTC).timestamp() * 1000
    )
    # 07:00 in Tokyo: today's 08:00 has not come yet, so the window is yesterday's.
    early = int(datetime(2026, 1, 14, 22, 0, tzinfo=UTC).timestamp() * 1000)
    assert window_start("daily", tokyo, 8, early) == int(
        datetime(2026, 1, 13, 23, 0, tzinfo=UTC).timestamp() * 1000
    )


# ---- end to end -------------------------------------------------------------------


async def test_put_preferences_changes_what_get_returns(server: ServerProcess) -> None:
    user = await person(server, "pref")
    async with server.client(user) as http:
        before = (await http.get("/api/notifications/preferences")).json()
        assert before["types"]["production_update"]["frequency"] == "daily"
        response = await http.put(
            "/api/notifications/preferences",
            json={
                "types": {"production_update": {"frequency": "instant"}},
                "quietHours": {"start": "22:00", "end": "07:00"},
                "timezone": "Europe/Paris",
            },
        )
        assert response.status_code == 200, response.text
        after = (await http.get("/api/notifications/preferences")).json()
    assert after["types"]["production_update"] == {
        "inApp": True,
        "email": True,
        "push": False,
        "frequency": "instant",
        "critical": False,
    }
    assert after["quietHours"] == {"start": "22:00", "end": "07:00"}
    assert after["timezone"] == "Europe/Paris"


async def test_what_get_returns_can_be_put_back_unchanged(server: ServerProcess) -> None:
    user = await person(server, "roundtrip")
    async with server.client(user) as http:
        before = (await http.get("/api/notifications/preferences")).json()
        # The body holds the read-only `critical` of every type: accepted and ignored.
        response = await http.put("/api/notifications/preferences", json=before)
        assert response.status_code == 200, response.text
        after = (await http.get("/api/notifications/preferences")).json()
    assert after == before


async def test_a_put_cannot_make_a_type_critical(server: ServerProcess) -> None:
    user = await person(server, "notcritical")
    async with server.client(user) as http:
        body = {"types": {"production_update": {"critical": True}}}
        response = await http.put("/api/notifications/preferences", json=body)
        assert response.status_code == 200, response.text
    assert response.json()["types"]["production_update"]["critical"] is False


async def test_bad_preferences_are_422(server: ServerProcess) -> None:
    async with server.client("someone") as http:
        for body in (
            {"types": {"nda_request": {"frequency": "hourly"}}},
            {"quietHours": {"start": "25:00", "end": "07:00"}},
            {"timezone": "Nowhere/City"},
            {"types": {"Bad Type": {"email": False}}},
        ):
            response = await http.put("/api/notifications/preferences", json=body)
            assert response.status_code == 422, (body, response.text)


async def test_a_type_the_user_has_received_may_be_set(server: ServerProcess) -> None:
    user = await person(server, "fan")
    async with server.client("platform", "service") as http:
        sent = await http.post(
            "/api/notifications/send",
            json={"userId": user, "type": "pitch_comment", "title": "t", "message": "m"},
        )
        assert sent.status_code == 202, sent.text
    async with server.client(user) as http:
        response = await http.put(
            "/api/notifications/preferences", json={"types": {"pitch_comment": {"email": False}}}
        )

    assert response.status_code == 200, response.text
    assert response.json()["types"]["pitch_comment"]["email"] is False


async def test_email_switched_off_skips_the_email_but_keeps_in_app(server: ServerProcess) -> None:
    user = await person(server, "quiet")
    async with server.client(user) as http:
        await http.put(
            "/api/notifications/preferences", json={"types": {"nda_request": {"email": False}}}
        )
    [notification_id] = await request_nda(server, user, title="T")
    async with server.client(user) as http:
        item = await wait_status(http, notification_id, "skipped_preference")
    assert item["emailStatus"] == "skipped_preference"


async def test_in_app_switched_off_is_neither_listed_nor_pushed(server: ServerProcess) -> None:
    user = await person(server, "noinapp")
    async with server.client(user) as http:
        await http.put(
            "/api/notifications/preferences",
            json={"types": {"system": {"inApp": False, "email": False}}},
        )
    async with server.client("platform", "service") as http:
        response = await http.post(
            "/api/notifications/send",
            json={"userId": user, "type": "system", "title": "t", "message": "m"},
        )
    assert len(response.json()["ids"]) == 1
    async with server.client(user) as http:
        page = (await http.get("/api/notifications")).json()
    assert page["items"] == [] and page["unreadCount"] == 0


async def test_quiet_hours_hold_normal_email_but_not_critical(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    user = await person(server, "night")
    # Quiet hours covering every minute but one: now is inside them whatever the time.
    now = datetime.now(UTC)
    end = (now.hour * 60 + now.minute + 2) % 1440
    start = (end + 1) % 1440
    quiet = {
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": f"{end // 60:02d}:{end % 60:02d}",
    }
    async with server.client(user) as http:
        await http.put(
            "/api/notifications/preferences", json={"quietHours": quiet, "timezone": "UTC"}
        )
    async with server.client("platform", "service") as http:
        normal = await http.post(
            "/api/notifications/send",
            json={"userId": user, "type": "system", "title": "later", "message": "m"},
        )
        critical = await http.post(
            "/api/notifications/nda/request",
            json={"pitchId": "p", "pitchTitle": "Now", "requesterId": "r", "ownerId": user},
        )
    async with server.client(user) as http:
        held = await wait_status(http, normal.json()["ids"][0], "delayed")
        sent = await wait_status(http, critical.json()["ids"][0], "sent")
    assert held["emailStatus"] == "delayed" and sent["emailStatus"] == "sent"
    emails = await wait_for_emails(standin, f"{user}@example.com")
    assert len(emails) == 1
