"""Unread-message emails never mention someone the recipient blocks."""

from __future__ import annotations

import asyncio

from tests.notifications.conftest import UNREAD_DELAY, emails_to, person, wait_for_emails
from tests.notifications.test_scheduled_emails import _say
from tests.security.test_lifecycle_blocks import block
from tests.servers import ServerProcess, conversation
from tests.standins.sendgrid import SendGridStandin


async def test_an_unread_email_counts_and_names_only_people_the_recipient_does_not_block(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    alice, bob, carol = (
        await person(server, "alice"),
        await person(server, "bob"),
        await person(server, "carol"),
    )
    chat = await conversation(server, alice, bob, carol, title="Slate review")
    await _say(server, alice, chat, "Thoughts on the slate?")  # quoted: alice wrote here
    await block(server, alice, bob)
    await _say(server, bob, chat, "Bob's secret pitch")
    await _say(server, bob, chat, "Bob again")
    await _say(server, carol, chat, "Carol likes it")
    [email] = await wait_for_emails(standin, f"{alice}@example.com", timeout=UNREAD_DELAY * 8)
    text = repr(email)
    assert "Carol likes it" in text and carol.title() in text
    assert "1 unread message" in text
    assert bob not in text.lower() and "Bob's secret pitch" not in text


async def test_no_unread_email_when_every_unread_message_is_from_someone_blocked(
    server: ServerProcess, standin: SendGridStandin
) -> None:
    alice, bob, carol = (
        await person(server, "alice"),
        await person(server, "bob"),
        await person(server, "carol"),
    )
    chat = await conversation(server, alice, bob, carol, title="Slate review")
    await block(server, alice, bob)
    await _say(server, bob, chat, "Only bob writes")
    # Carol, who blocks nobody, is emailed: the scan ran and passed alice over.
    await wait_for_emails(standin, f"{carol}@example.com", timeout=UNREAD_DELAY * 8)
    await asyncio.sleep(UNREAD_DELAY * 2)
    assert emails_to(standin, f"{alice}@example.com") == []
