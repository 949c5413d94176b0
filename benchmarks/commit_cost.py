"""What one group commit costs on SQLite: CPU per batch, and its latency beside a busy loop.

``python -m benchmarks.commit_cost`` stores batches of 1 and of 14 messages with
`MessageStore.insert_batch` on a fresh SQLite file (WAL, synchronous=FULL, as the server
runs it) and prints the process CPU and wall time per batch. Then it stores one message at
a time while a coroutine keeps the event loop busy in 1 ms slices (as a fan-out does), the
process pinned to one core, and prints the commit latency's p50 / p99 / max: what a sender
waits for its ack when the loop is loaded.

To compare two commits, run it in a copy of each tree (``git archive <commit> | tar -x -C
/tmp/tree``) with ``PYTHONPATH=/tmp/tree``, alternating, on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

import uvloop

from storage.db import open_database
from storage.messages import MessageStore, NewMessage
from storage.migrations import migrate

CONVERSATIONS = 38


async def _store(path: str) -> tuple[MessageStore, list[str]]:
    db = open_database(f"sqlite:///{path}")
    await db.connect()
    await migrate(db)
    store = MessageStore(db)
    conversations = [
        (await store.create_conversation("u1", ["u1", f"u{i}"], None, None, None))[0]
        for i in range(2, 2 + CONVERSATIONS)
    ]
    return store, conversations


async def cpu_per_batch(size: int, batches: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per `insert_batch` of `size` messages, each with a clientMsgId."""
    store, conversations = await _store(f"{tempfile.mkdtemp()}/cost.db")
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(batches):
        await store.insert_batch(
            [
                NewMessage(
                    conversations[(i + j) % len(conversations)],
                    "u1",
                    "hello there " * 5,
                    client_msg_id=f"c{i}-{j}",
                )
                for j in range(size)
            ]
        )
    done_cpu, done_wall = time.process_time(), time.perf_counter()
    await store.db.close()
    return (done_cpu - cpu) / batches * 1e6, (done_wall - wall) / batches * 1e6


async def latency_beside_busy_loop(seconds: float) -> list[float]:
    """Commit latencies (ms) of one message at a time, 2 ms apart, while the loop is busy."""
    store, conversations = await _store(f"{tempfile.mkdtemp()}/busy.db")
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            while time.perf_counter() - start < 0.001:
                pass
            await asyncio.sleep(0)

    spinner = asyncio.create_task(busy())
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        await store.insert_batch(
            [NewMessage(conversations[0], "u1", "x" * 200, client_msg_id=f"b{len(latencies)}")]
        )
        latencies.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.002)
    stop.set()
    await spinner
    await store.db.close()
    return sorted(latencies)


async def main(seconds: float) -> None:
    for size, batches in ((1, 1500), (14, 300)):
        cpu, wall = await cpu_per_batch(size, batches)
        print(f"batch of {size:>2}: {cpu:6.0f} µs CPU, {wall:6.0f} µs wall per batch")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    found = await latency_beside_busy_loop(seconds)
    p50, p99 = found[len(found) // 2], found[int(len(found) * 0.99)]
    print(
        f"one message beside a busy loop (one core): {len(found)} commits, "
        f"p50 {p50:.2f} / p99 {p99:.2f} / max {found[-1]:.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="busy-loop phase length")
    # The server's event loop (server/cli.py runs uvicorn with loop="uvloop").
    uvloop.run(main(parser.parse_args().seconds))
