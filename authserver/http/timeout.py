"""A bound on how long any request may take (REQUEST_TIMEOUT), kept with one loop timer.

A request still running after the limit is cancelled and answered 503 temporarily_unavailable
with Retry-After, like a database outage: a slow client trickling its body, a database that
stopped answering mid-query, or a lock held too long must not tie up a worker for ever.

Every request has the same limit, so deadlines expire in the order requests arrive: the
requests in flight are kept in an insertion-ordered dict, and one `loop.call_at` timer waits for
the oldest deadline. Per request that is a clock read and a dict insert and pop, instead of
`asyncio.timeout`'s timer handle scheduled and cancelled on the loop's heap.

Cancellation reaches the handler as `asyncio.CancelledError` at whatever it was awaiting, exactly
as with `asyncio.timeout` (whose rules `Deadline.timed_out` follows to tell our cancellation from
another). Store code runs every multi-statement change inside `Database.transaction()`, whose
context manager rolls the transaction back on any exception, cancellation included; a single
statement in autocommit either ran or did not. So a cancelled request leaves the database as it
was or fully changed, never half changed (tests/http/test_request_timeout.py checks this).
"""

from __future__ import annotations

import asyncio

_EARLY = 0.001  # seconds: what counts as expired when the timer runs a hair early


class Deadline:
    """One request's deadline, registered with `Deadlines.start` until `Deadlines.finish`."""

    __slots__ = ("at", "cancelling", "expired", "settled", "task")

    def __init__(self, task: asyncio.Task[object], at: float) -> None:
        self.task = task
        self.at = at
        self.cancelling = task.cancelling()
        self.expired = False
        self.settled = False

    def timed_out(self) -> bool:
        """Whether a CancelledError being handled is this deadline's own (then it is consumed),
        not a shutdown's or a caller's, which must propagate."""
        self.settled = True
        return self.expired and self.task.uncancel() <= self.cancelling


class Deadlines:
    """The deadlines of one application's requests, on whichever event loop runs them."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._pending: dict[Deadline, None] = {}  # oldest first: the order deadlines expire in
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> Deadline:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run one per test): start afresh
            self._loop, self._pending, self._timer = loop, {}, None
        task = asyncio.current_task(loop)
        assert task is not None
        deadline = Deadline(task, loop.time() + self.seconds)
        self._pending[deadline] = None
        if self._timer is None:
            self._timer = loop.call_at(deadline.at, self._expire)
        return deadline

    def finish(self, deadline: Deadline) -> None:
        self._pending.pop(deadline, None)
        if deadline.expired and not deadline.settled:  # our cancel met no CancelledError
            deadline.task.uncancel()  # take it back, as asyncio.timeout does

    def _expire(self) -> None:
        """Cancel every request past its deadline, then wait for the next oldest one."""
        assert self._loop is not None
        self._timer = None
        now = (
            self._loop.time() + _EARLY
        )  # the loop may run a timer up to its clock resolution early
        pending = self._pending
        while pending:
            oldest = next(iter(pending))
            if oldest.at > now:
                self._timer = self._loop.call_at(oldest.at, self._expire)
                return
            del pending[oldest]
            oldest.expired = True
            oldest.task.cancel()
