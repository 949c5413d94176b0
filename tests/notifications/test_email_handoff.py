"""Notification emails leave when their notification batch runs, not a whole email batch later.

The email worker sends a batch once EMAIL_BATCH_SIZE emails wait or EMAIL_BATCH_TIMEOUT has
passed. A notification batch is a batch already: its emails are handed over at once, so an
alert to a handful of users is not held until the email batch fills or times out.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.notifications.conftest import person, request_nda, wait_for_emails
from tests.servers import ServerProcess
from tests.standins.sendgrid import SendGridStandin


async def test_a_notification_batch_sends_its_emails_without_waiting_for_the_email_batch(
    make_server: Callable[..., ServerProcess], standin: SendGridStandin
) -> None:
    # A full email batch of 200 or a minute: neither comes within this test.
    server = make_server(EMAIL_BATCH_SIZE="200", EMAIL_BATCH_TIMEOUT="60")
    owner, requester = await person(server, "owner"), await person(server, "req")
    await request_nda(server, owner, requester, "Harbour Lights")
    found = await wait_for_emails(standin, f"{owner}@example.com", timeout=10.0)
    assert len(found) == 1
