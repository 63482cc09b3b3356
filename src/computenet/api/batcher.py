"""Group commit: submissions arriving together are written in one transaction.

Each request puts its submission on a queue and waits on a future; one writer task takes
everything that arrived within ``window_s`` (up to ``max_items``), commits it in ONE
transaction in a worker thread, and only then resolves the futures. So a client is
acknowledged only after its job is durable, and the disk waits once per batch, not per job.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from computenet.store.repository import JobSpec, Principal, Repository

Item = tuple[Principal, JobSpec, str | None]


class SubmitBatcher:
    def __init__(self, repo: Repository, window_s: float, max_items: int) -> None:
        self.repo = repo
        self.window_s = window_s
        self.max_items = max_items
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, item: Item) -> tuple[dict[str, Any], bool]:
        if self._queue is None:  # not started (no group commit, or no lifespan): one each
            return (await asyncio.to_thread(self.repo.submit_batch, [item]))[0]
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, fut))
        result: tuple[dict[str, Any], bool] = await fut
        return result

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_items:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            # Drain whatever else is already waiting without further delay.
            while len(batch) < self.max_items and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await asyncio.to_thread(self.repo.submit_batch, [i for i, _ in batch])
            except Exception as exc:  # the whole transaction failed: nothing acknowledged
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)
