"""A background loop: a tick, then a wait of the interval (cut short by `wake`), until stopped.

A tick that raises is handed to `on_failure` and the loop goes on: the next tick is the
retry. Each owner logs its failures as it sees fit (a traceback, a warning line, or a
RepeatedFailure story during an outage). `on_stop` runs once the loop has ended, and only
if it was started: what the loop held, such as a lease, is released there, after the last
tick, so that no tick can take it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Periodic:
    def __init__(
        self,
        tick: Callable[[], Awaitable[object]],
        interval: float,
        name: str,
        *,
        on_failure: Callable[[Exception], None],
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`tick`'s result is ignored. `on_failure` is called inside the `except` block,
        so `log.exception` there carries the traceback."""
        self._tick = tick
        self._interval = interval
        self._name = name
        self._on_failure = on_failure
        self._on_stop = on_stop
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    def wake(self) -> None:
        """Tick now rather than at the end of the wait. A wake that comes during a tick is
        kept: the next tick follows at once, so work queued meanwhile does not wait."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._on_stop is not None:
            await self._on_stop()

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception as exc:
                self._on_failure(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
