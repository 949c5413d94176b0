"""Business workflows end to end: REST call -> inbox -> email job -> SendGrid stand-in."""

from __future__ import annotations

from tests.notifications.conftest import person, request_nda, subject, wait_for_emails, wait_status
from tests.servers import ServerProcess, ws_client
from tests.standins.sendgrid import SendGridStandin


async def test_nda_request_notifies_the_owner_live_and_by_email(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    owner, requester = await person(server, "owner"), await person(server, "req")
    async with ws_client(server, owner) as session:
        await request_nda(server, owner, requester, "Night Train", "Keen to read it")
        frame = await session.expect("notification")
    assert frame["notification"]["type"] == "nda_request"
    assert requester.title() in frame["notification"]["message"]
    [email] = await wait_for_emails(standin, f"{owner}@example.com")
    assert "Night Train" in subject(email) and requester.title() in subject(email)
    async with server.client(owner) as http:
        item = await wait_status(http, frame["notification"]["id"], "sent")
        assert item["emailStatus"] == "sent"


async def test_nda_approved_and_rejected_notify_the_requester(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    owner, requester = await person(server, "owner"), await person(server, "req")
    body = {
        "pitchId": "p-2",
        "pitchTitle": "Salt Flats",
        "requesterId": requester,
        "ownerId": owner,
    }
    async with server.client("platform", "service") as http:
        assert (await http.post("/api/notifications/nda/approved", json=body)).status_code == 202
        rejected = {**body, "reason": "Not a fit"}
        assert (
            await http.post("/api/notifications/nda/rejected", json=rejected)
        ).status_code == 202
    emails = await wait_for_emails(standin, f"{requester}@example.com", count=2)
    subjects = sorted(subject(e) for e in emails)
    assert len(subjects) == 2
    assert any("declined" in s for s in subjects)
    assert emails_to_owner(standin, owner) == []
    async with server.client(requester) as http:
        types = {i["type"] for i in (await http.get("/api/notifications")).json()["items"]}
    assert types == {"nda_approved", "nda_rejected"}


def emails_to_owner(standin: SendGridStandin, owner: str) -> list[object]:
    from tests.notifications.conftest import emails_to

    return list(emails_to(standin, f"{owner}@example.com"))


async def test_investment_status_notifies_the_parties_it_concerns(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    investor, creator = await person(server, "inv"), await person(server, "cre")
    event = {
        "investmentId": "inv-9",
        "pitchId": "p-3",
        "investorId": investor,
        "creatorId": creator,
        "amount": 25000,
        "currency": "USD",
        "pitchTitle": "Deep Blue",
    }
    async with server.client("platform", "service") as http:
        received = await http.post(
            "/api/notifications/investment", json={**event, "status": "received"}
        )
        assert received.status_code == 202 and len(received.json()["ids"]) == 1
        confirmed = await http.post(
            "/api/notifications/investment", json={**event, "status": "confirmed"}
        )
        assert len(confirmed.json()["ids"]) == 2
    [to_investor] = await wait_for_emails(standin, f"{investor}@example.com")
    assert "confirmed" in subject(to_investor) and "Deep Blue" in subject(to_investor)
    to_creator = await wait_for_emails(standin, f"{creator}@example.com", count=2)
    assert any("USD 25,000.00" in subject(e) for e in to_creator)
    async with server.client(creator) as http:
        types = [i["type"] for i in (await http.get("/api/notifications")).json()["items"]]
    assert types == ["investment_status", "investment_received"]


async def test_a_user_without_an_address_gets_in_app_and_the_skip_is_recorded(
    server: ServerProcess,
) -> None:
    owner = await person(server, "noaddr", email=False)
    [notification_id] = await request_nda(server, owner, "someone", "Quiet")
    async with server.client(owner) as http:
        item = await wait_status(http, notification_id, "skipped_no_address")
    assert item["emailStatus"] == "skipped_no_address"


async def test_production_and_marketplace_reach_every_listed_user(server: ServerProcess) -> None:
    team = [await person(server, "crew") for _ in range(3)]
    async with server.client("platform", "service") as http:
        production = await http.post(
            "/api/notifications/production",
            json={
                "productionId": "pr-1",
                "pitchId": "p-5",
                "pitchTitle": "Harbor",
                "stage": "post-production",
                "previousStage": "shooting",
                "teamIds": team,
            },
        )
        market = await http.post(
            "/api/notifications/marketplace",
            json={
                "pitchId": "p-6",
                "pitchTitle": "Dune Sea",
                "genre": "sci-fi",
                "userIds": team[:2],
            },
        )
    assert len(production.json()["ids"]) == 3 and len(market.json()["ids"]) == 2
    async with server.client(team[0]) as http:
        items = (await http.get("/api/notifications")).json()["items"]
    assert [i["type"] for i in items] == ["marketplace_alert", "production_update"]
    # Both default to the daily digest: no instant email.
    assert {i["emailStatus"] for i in items} == {"digest_daily"}
