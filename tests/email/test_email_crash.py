"""kill -9 in the middle of a batch, then a restart: every accepted email goes out."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

from tests.email.support import ServerFactory, delivered_ids, eventually, sendgrid_env
from tests.standins.sendgrid import Mode, SendGridStandin

COUNT = 60


async def test_kill_9_mid_batch_loses_nothing_and_duplicates_only_in_the_crash_window(
    make_email_server: ServerFactory, sendgrid: SendGridStandin, tmp_path: Path
) -> None:
    env = {
        **sendgrid_env(sendgrid),
        "EMAIL_BATCH_SIZE": "10",
        "EMAIL_SEND_CONCURRENCY": "5",
        # A dead worker's claims come back after one second.
        "EMAIL_CLAIM_TTL": "1",
    }
    sendgrid.set_mode(Mode(delay_ms=100))  # slow enough to kill mid-batch
    data = tmp_path / "crash"
    server = await make_email_server(data_dir=data, **env)
    emails = [{"to": f"c-{uuid.uuid4().hex[:8]}@example.com", "subject": "s", "text": "t"}]
    response = await server.http.post("/api/email/batch", json={"emails": emails * COUNT})
    ids = [r["id"] for r in response.json()["results"]]
    assert response.status_code == 202 and len(ids) == COUNT

    async def some_sent() -> bool:
        return len(delivered_ids(sendgrid)) >= 5

    await eventually(some_sent, what="the first sends")
    server.proc.kill()
    before = len(set(delivered_ids(sendgrid)))
    assert before < COUNT, "the batch finished before the kill"

    restarted = await make_email_server(data_dir=data, **env)

    async def all_sent() -> bool:
        return set(ids) <= set(delivered_ids(sendgrid))

    await eventually(all_sent, timeout=30, what="every accepted email at the stand-in")
    await asyncio.sleep(0.3)  # let the last outcomes be written
    counts = Counter(i for i in delivered_ids(sendgrid) if i in set(ids))
    twice = [i for i, n in counts.items() if n > 1]
    # Only emails in flight at the kill may go twice: at most the send concurrency.
    assert len(twice) <= 5
    for email_id in ids:
        status = await restarted.wait_status(email_id, "sent")
        if email_id in twice:
            assert "lease_expired" in [e["type"] for e in status["events"]]
