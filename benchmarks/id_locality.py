"""Why the soak's p99 grew (issue 13, item 8): commit time as the messages table grows,
with random (version 4) message ids against time-ordered ones (version 7's layout).

The soak that showed p99 rising from 15-20 ms to 57-61 ms after 4 minutes ran before
message ids followed time (commit 773eb9b). With random ids every message lands on a
random page of the primary-key index; once that index outgrows SQLite's page cache
(2 MB by default) a commit reads and writes pages all over it, and more of them the
larger the table. This stores the soak's traffic (300 msgs/s sent as batches of the
group commit's typical size) through our own MessageStore on a fresh SQLite file, once
with each id layout, and prints the commit time per window of stored messages.

Result on 2026-12-03 (the command below, while other work ran): no growth with either
layout up to 150,000 messages (p99 13.7-19.6 ms random, 15.9-26.5 ms time-ordered, p50
1.2-3.7 ms, window to window noise larger than any trend): id locality is not what made
the soak's p99 grow at this size (benchmarks/README.md, "Where the misses come from").

    python -m benchmarks.id_locality --messages 180000 --batch 3 --window 20000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from storage import messages as messages_module
from storage.db import open_database
from storage.messages import MessageStore, NewMessage
from storage.migrations import migrate

CONVERSATIONS = 500  # the soak's 1,000 connections in two-person conversations


def random_id(ms: int) -> str:
    """The layout before 773eb9b."""
    return str(uuid.uuid4())


async def run(layout: str, make_id: Callable[[int], str], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pitchey-ids-") as workdir:
        db = open_database(f"sqlite:///{Path(workdir) / 'ids.db'}")
        await db.connect()
        await migrate(db)
        store = MessageStore(db)
        conversations = []
        for k in range(CONVERSATIONS):
            conversation_id, _ = await store.create_conversation(
                f"a{k}", [f"a{k}", f"b{k}"], None, None, None
            )
            conversations.append((conversation_id, f"a{k}"))
        content = "x" * 100
        window: list[float] = []
        stored = 0
        with mock.patch.object(messages_module, "message_id", make_id):
            while stored < args.messages:
                batch = [
                    NewMessage(
                        conversation_id=conversations[(stored + i) % CONVERSATIONS][0],
                        sender_id=conversations[(stored + i) % CONVERSATIONS][1],
                        content=content,
                    )
                    for i in range(args.batch)
                ]
                started = time.perf_counter()
                await store.insert_batch(batch)
                window.append((time.perf_counter() - started) * 1000)
                stored += args.batch
                if stored % args.window < args.batch:
                    ordered = sorted(window)
                    p99 = ordered[int(len(ordered) * 0.99)]
                    print(
                        f"{layout:>9} stored {stored:>7,}: commit p50 "
                        f"{statistics.median(ordered):5.2f} ms, p99 {p99:6.2f} ms, "
                        f"max {ordered[-1]:6.2f} ms",
                        flush=True,
                    )
                    window = []
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=180_000)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--window", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(run("random v4", random_id, args))
    asyncio.run(run("time v7", messages_module.message_id, args))


if __name__ == "__main__":
    main()
