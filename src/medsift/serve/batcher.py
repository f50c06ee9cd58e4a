"""Micro-batching: requests that arrive within ``max_wait_ms`` of each other are scored in one model call.

Each request puts its items and a future on an asyncio queue. One collector task takes the first waiting
request, keeps taking more until ``max_wait_ms`` has passed or ``max_items`` are gathered, runs the model
once on all of them in a worker thread (so the event loop keeps accepting requests), and hands every
request its own slice of the results. One model call at a time: the model's own threads use the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any


class MicroBatcher:
    """Share model calls between concurrent requests; ``fn(items) -> results`` keeps order and length."""

    def __init__(
        self, fn: Callable[[list[Any]], Sequence[Any]], *, max_items: int = 64, max_wait_ms: float = 5
    ):
        self.fn, self.max_items, self.max_wait = fn, max_items, max_wait_ms / 1000
        self.queue: asyncio.Queue[tuple[list[Any], asyncio.Future]] | None = None
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.calls = 0  # model calls made; fewer than requests when batching works

    async def submit(self, items: list[Any]) -> list[Any]:
        """Results for ``items``, in order, computed together with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        # the collector belongs to one event loop; a new loop (a restarted server, a test client) gets its own
        if self.task is None or self.task.done() or self.loop is not loop:
            if (
                self.task is not None
                and not self.task.done()
                and self.loop is not None
                and not self.loop.is_closed()
            ):
                self.loop.call_soon_threadsafe(self.task.cancel)
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._collect())
        future: asyncio.Future = loop.create_future()
        assert self.queue is not None
        await self.queue.put((items, future))
        return await future

    async def _gather(self) -> list[tuple[list[Any], asyncio.Future]]:
        assert self.queue is not None
        waiting = [await self.queue.get()]
        size = len(waiting[0][0])
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_items:
            timeout = deadline - asyncio.get_running_loop().time()
            if timeout <= 0:
                break
            try:
                request = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                break
            waiting.append(request)
            size += len(request[0])
        return waiting

    async def _collect(self) -> None:
        while True:
            waiting = await self._gather()
            items = [item for request, _ in waiting for item in request]
            try:
                results = await asyncio.to_thread(self.fn, items)
                self.calls += 1
            except Exception as exc:  # every request of the batch gets the error; the collector lives on
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for request, future in waiting:
                if not future.done():  # a client that went away leaves a cancelled future
                    future.set_result(list(results[start : start + len(request)]))
                start += len(request)

    async def close(self) -> None:
        if self.task is not None and self.loop is asyncio.get_running_loop():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
