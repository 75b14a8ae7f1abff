"""The worker's batcher: acknowledgement only after a batch's sinks, order, windows, failure."""

from __future__ import annotations

import asyncio

from orderradar.devstack.waiting import async_wait_until
from stream.worker import EventBatcher


class Sinks:
    """Records what the batcher hands over; a batch's sinks finish when released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.acked: list[int] = []
        self.release = asyncio.Event()
        self.running = 0
        self.max_running = 0
        self.fatal: list[BaseException] = []

    async def process(self, batch: list[int]) -> None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.batches.append(list(batch))
        try:
            await self.release.wait()
            if -1 in batch:
                raise RuntimeError("sink failed")
        finally:
            self.running -= 1

    async def ack(self, event: int) -> None:
        self.acked.append(event)


def test_acks_follow_the_sinks_and_batches_run_one_at_a_time_in_order() -> None:
    async def scenario() -> None:
        sinks = Sinks()
        batcher = EventBatcher(sinks.process, sinks.ack, max_size=3, window_s=30, on_fatal=sinks.fatal.append)
        for event in range(3):
            await batcher.add(event)  # full: the first batch starts
        await async_wait_until(lambda: sinks.batches == [[0, 1, 2]], timeout=5)
        for event in range(3, 5):
            await batcher.add(event)  # collected while the first batch is in its sinks
        assert sinks.acked == [] and sinks.running == 1
        adding = asyncio.ensure_future(batcher.add(5))  # full again: waits for the first (backpressure)
        await asyncio.sleep(0)  # one loop turn so the task starts (a yield, not a wait)
        assert not adding.done()
        sinks.release.set()
        await adding
        await batcher.drain()
        assert sinks.batches == [[0, 1, 2], [3, 4, 5]]
        assert sinks.acked == [0, 1, 2, 3, 4, 5] and sinks.max_running == 1 and not sinks.fatal

    asyncio.run(scenario())


def test_a_partial_batch_goes_after_the_window() -> None:
    async def scenario() -> None:
        sinks = Sinks()
        sinks.release.set()
        batcher = EventBatcher(sinks.process, sinks.ack, max_size=1000, window_s=0.05, on_fatal=sinks.fatal.append)
        timer = asyncio.ensure_future(batcher.run_timer())
        try:
            await batcher.add(1)
            await batcher.add(2)
            await async_wait_until(lambda: sinks.acked == [1, 2], timeout=5, what="the window flush")
            assert sinks.batches == [[1, 2]]
        finally:
            timer.cancel()

    asyncio.run(scenario())


def test_a_failed_batch_is_never_acknowledged() -> None:
    async def scenario() -> None:
        sinks = Sinks()
        sinks.release.set()
        batcher = EventBatcher(sinks.process, sinks.ack, max_size=2, window_s=30, on_fatal=sinks.fatal.append)
        await batcher.add(7)
        await batcher.add(-1)
        try:
            await batcher.drain()
        except RuntimeError:
            pass
        assert sinks.acked == [] and len(sinks.fatal) == 1 and str(sinks.fatal[0]) == "sink failed"

    asyncio.run(scenario())
