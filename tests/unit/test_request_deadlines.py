"""REQUEST_TIMEOUT's bookkeeping (http/timeout.py): one timer for all the requests in flight,
cancelling each at its own deadline, and never swallowing a cancellation that is not its own."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from authserver.http.timeout import Deadlines

LIMIT = 0.3


async def request(deadlines: Deadlines, work: float) -> tuple[str, float]:
    """What the pipeline does around an endpoint that takes `work` seconds."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = deadlines.start()
    try:
        await asyncio.sleep(work)
        outcome = "answered"
    except asyncio.CancelledError:
        if not deadline.timed_out():
            raise
        outcome = "timed out"
    finally:
        deadlines.finish(deadline)
    return outcome, loop.time() - began


async def test_a_request_within_the_limit_is_untouched() -> None:
    deadlines = Deadlines(LIMIT)
    assert (await request(deadlines, 0.01))[0] == "answered"


async def test_each_request_is_cancelled_at_its_own_deadline_while_others_finish() -> None:
    """A quick request ahead of a stuck one leaves the timer pointing at its own (past) deadline;
    the stuck one must still be cancelled at its deadline, not earlier and not never."""
    deadlines = Deadlines(LIMIT)
    quick = asyncio.create_task(request(deadlines, 0.01))
    await asyncio.sleep(LIMIT / 3)
    stuck = asyncio.create_task(request(deadlines, 30))
    later = asyncio.create_task(request(deadlines, LIMIT / 2))
    assert (await quick)[0] == "answered"
    assert (await later)[0] == "answered"
    outcome, elapsed = await asyncio.wait_for(stuck, 10)
    assert outcome == "timed out"
    assert LIMIT - 0.01 <= elapsed < LIMIT + 2, elapsed


async def test_several_stuck_requests_all_time_out() -> None:
    deadlines = Deadlines(LIMIT)
    tasks = []
    for _ in range(3):
        tasks.append(asyncio.create_task(request(deadlines, 30)))
        await asyncio.sleep(LIMIT / 4)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert [outcome for outcome, _ in results] == ["timed out"] * 3
    assert all(LIMIT - 0.01 <= elapsed < LIMIT + 2 for _, elapsed in results), results


async def test_a_cancellation_from_elsewhere_propagates() -> None:
    """A server shutting down cancels the request's task: that is not a timeout to answer."""
    deadlines = Deadlines(LIMIT)
    task = asyncio.create_task(request(deadlines, 30))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_from_elsewhere_after_the_deadline_still_propagates() -> None:
    deadlines = Deadlines(LIMIT)
    cleaning_up = asyncio.Event()
    shutdown = asyncio.Event()
    seen: list[bool] = []

    async def stubborn() -> None:
        deadline = deadlines.start()
        try:
            try:
                await asyncio.sleep(30)
            finally:  # cleanup after our own cancellation, interrupted by a shutdown's
                cleaning_up.set()
                await shutdown.wait()
        except asyncio.CancelledError:
            seen.append(deadline.timed_out())
            raise
        finally:
            deadlines.finish(deadline)

    task = asyncio.create_task(stubborn())
    await asyncio.wait_for(cleaning_up.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert seen == [False]


def test_requests_are_tracked_per_event_loop() -> None:
    """Tests run one loop each; a Deadlines that saw another loop starts afresh on this one."""
    deadlines = Deadlines(LIMIT)
    for _ in range(2):
        assert asyncio.run(request(deadlines, 30))[0] == "timed out"


async def test_a_cancellation_the_request_swallowed_is_taken_back() -> None:
    """An endpoint that catches CancelledError and answers anyway must not leave its task
    marked as being cancelled (asyncio.timeout takes its cancellation back the same way)."""
    deadlines = Deadlines(LIMIT)

    async def swallowing() -> int:
        deadline = deadlines.start()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)
        finally:
            deadlines.finish(deadline)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert await asyncio.wait_for(asyncio.create_task(swallowing()), 10) == 0
