"""A notification batch stores its emails in one transaction and finishes its jobs in another.

One refused email fails its own job only. A process may die between the two commits: the
jobs are claimed again after their lease and each job's dedupe key gives back the email
stored the first time, so nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.db import open_database
from storage.messages import now_ms
from tests.notifications.conftest import (
    emails_to,
    person,
    request_nda,
    wait_for_emails,
    wait_status,
)
from tests.servers import ServerProcess, uid
from tests.services import create_pg_database, drop_pg_database
from tests.standins.sendgrid import SendGridStandin


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The servers' DATABASE_URL setting: none (SQLite in the data directory) or a fresh
    PostgreSQL database, dropped after the servers stop."""
    if request.param == "sqlite":
        yield {}
        return
    url = create_pg_database()
    yield {"DATABASE_URL": url}
    drop_pg_database(url)


async def _sql(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = open_database(url)
    await db.connect()
    try:
        if sql.startswith("SELECT"):
            return [tuple(row) for row in await db.fetch(sql, *args)]
        await db.execute(sql, *args)
        return []
    finally:
        await db.close()


async def test_a_refused_address_fails_its_own_email_and_not_the_batch(
    database: dict[str, str],
    make_server: Callable[..., ServerProcess],
    standin: SendGridStandin,
) -> None:
    server = make_server(**database)
    good = [await person(server, "good") for _ in range(2)]
    bad = uid("bad")
    async with server.client("platform", "service") as http:
        # The profile's pattern takes two dots in a row; an email address may not have them.
        profile = {"name": "Bad", "email": f"{bad}..x@example.com"}
        assert (await http.put(f"/api/users/{bad}", json=profile)).status_code == 200
        response = await http.post(
            "/api/notifications/send",
            json={
                "userIds": [good[0], bad, good[1]],
                "type": "system",
                "title": "Screening",
                "message": "Tonight at eight",
            },
        )
        assert response.status_code == 202, response.text
    for user in good:
        assert len(await wait_for_emails(standin, f"{user}@example.com")) == 1
    async with server.client(bad) as http:
        [item] = (await http.get("/api/notifications")).json()["items"]
        assert (await wait_status(http, item["id"], "failed"))["emailStatus"] == "failed"


async def test_a_batch_that_died_before_finishing_its_jobs_sends_each_email_once(
    database: dict[str, str],
    make_server: Callable[..., ServerProcess],
    standin: SendGridStandin,
    tmp_path: Path,
) -> None:
    data = tmp_path / "crash"
    first = make_server(data_dir=data, **database)
    owner = await person(first, "owner")
    [notification_id] = await request_nda(first, owner, title="Tideline")
    assert len(await wait_for_emails(standin, f"{owner}@example.com")) == 1
    async with first.client(owner) as http:
        assert (await wait_status(http, notification_id, "sent"))["emailStatus"] == "sent"
    first.kill()
    url = database.get("DATABASE_URL", f"sqlite:///{data}/pitchey.db")
    [(email_id,)] = await _sql(
        url, "SELECT email_id FROM notifications WHERE id = ?", notification_id
    )
    # What a process killed between the two commits leaves: the email stored (and here
    # sent), the job not finished and leased to the dead process, the lease lapsed.
    await _sql(
        url,
        "UPDATE notification_jobs SET status = 'pending', result = NULL, "
        "claimed_by = 'dead-process', claimed_until = ? WHERE notification_id = ?",
        now_ms() - 1,
        notification_id,
    )
    await _sql(
        url,
        "UPDATE notifications SET email_status = 'queued', email_id = NULL WHERE id = ?",
        notification_id,
    )

    second = make_server(data_dir=data, secret=first.secret, **database)
    async with second.client(owner) as http:
        assert (await wait_status(http, notification_id, "sent"))["emailStatus"] == "sent"
    jobs = await _sql(
        url,
        "SELECT status, result FROM notification_jobs WHERE notification_id = ?",
        notification_id,
    )
    assert jobs == [("sent", email_id)]
    await asyncio.sleep(0.5)  # a second email would have left by now
    assert len(emails_to(standin, f"{owner}@example.com")) == 1
