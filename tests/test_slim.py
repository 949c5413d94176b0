"""The per-connection queue and event (base/slim.py) behave as asyncio's do."""

from __future__ import annotations

import asyncio

from base.slim import SlimEvent, SlimQueue


async def test_a_getter_waits_for_the_next_item_and_items_come_out_in_order() -> None:
    queue: SlimQueue[int] = SlimQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await getter == 1
    assert await queue.get() == 2
    assert queue.empty()


async def test_a_getter_cancelled_after_its_wake_up_leaves_the_item_to_the_next() -> None:
    queue: SlimQueue[str] = SlimQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("frame")
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert await asyncio.wait_for(second, 1) == "frame"


async def test_the_event_wakes_every_waiter_and_clear_makes_them_wait_again() -> None:
    event = SlimEvent()
    waiters = [asyncio.create_task(event.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True]
    event.clear()
    later = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    assert not later.done()
    event.set()
    assert await later
