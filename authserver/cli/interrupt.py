"""Ctrl-C as a request to stop, for commands that run until interrupted (`audit tail --follow`).

Left to itself, SIGINT ends such a command by accident rather than by design, and not always:

- a process started from a non-interactive shell's background (`make test &`, a script's `cmd &`)
  inherits SIGINT *ignored*; Python then installs no KeyboardInterrupt handler, asyncio.run none
  of its own, and SIGINT does nothing at all: the command runs forever (issue 15: the e2e test
  `test_follow_prints_new_events_as_they_happen` waited 15 s for an exit that never came);
- otherwise asyncio.run turns SIGINT into a cancellation of the main task, which every layer
  under it (SQLAlchemy's greenlets, the pool's `wait_for`, a shielded close) must pass on, and
  a KeyboardInterrupt raised between two bytecodes can land anywhere.

`StopRequest.install()` replaces all that with one handler, installed before the command does
anything else: SIGINT sets a flag and wakes the event loop, nothing is raised or cancelled
behind the command's back, and the command's loop checks the flag and returns normally (exit 0).
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType


class StopRequest:
    """Set by SIGINT; awaited by the loop of a command that runs until interrupted."""

    def __init__(self) -> None:
        self.requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    @classmethod
    def install(cls) -> StopRequest:
        """Handle SIGINT from now on, for the rest of the process, even if it was started with
        SIGINT ignored: Ctrl-C (or `kill -INT`) must always stop a command that runs until
        interrupted."""
        stop = cls()
        signal.signal(signal.SIGINT, stop._on_signal)
        return stop

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes: set the flag and wake the loop, no more.
        # A second Ctrl-C while the first is being honoured (a query that does not return)
        # interrupts for good, as Python's own handler would (exit status 130).
        if self.requested:
            signal.default_int_handler(signum, frame)
        self.requested = True
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`, less if asked to stop meanwhile; True if asked to stop."""
        if self._event is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
        if self.requested:
            return True
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            pass
        return self.requested
