"""Argon2id password hashing, off the event loop, on threads of its own.

SPEC: a wrong username and a wrong password are indistinguishable, in body and in timing
(medians within 20 %). Two rules keep every failed check at the cost of one verification at
today's parameters, whatever is stored:

- an unknown username is verified against a dummy hash made with today's parameters;
- a stored hash that is *not* at today's parameters (made before the operator raised them, or
  malformed, say edited in the database) answers a wrong password only once the check has
  lasted as long as a verification at today's parameters does (security review, finding 4:
  28.6 ms for an unknown user against 5.5 ms for a hash with older parameters, and a malformed
  hash answered at once). The wait is the median of the latest verifications at today's
  parameters (`CostOfToday`), awaited on the event loop, not in a thread. A right password is
  not delayed: it gets the hash re-made at today's parameters (login/check.py).

A hash made with *costlier* parameters than today's (the operator lowered them) costs what it
costs until its user next signs in; docs/concepts/login-limits.md says so.

Hashes run on a small executor of their own, not asyncio's default one (issue 13, item 5): one
thread fewer than the cores the process may use (at least one), each at a lower scheduling
priority (nice +10, Linux), so password logins at full rate never take the event loop's core
away from token requests, and nothing else sent to a thread (the key ring's builds, the KEK
file) queues behind a burst of logins. argon2-cffi releases the GIL while it hashes. Logins
queue for a thread instead, each still costing one hash; under sustained token load they get
about a tenth of a shared core (the weight of nice +10).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authserver.settings import Settings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
HASHING_NICE = 10  # added to the hashing threads' nice value (lower priority), Linux


def hashing_threads() -> int:
    """One fewer than the cores this process may run on, and at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def _lower_priority() -> None:
    """Runs in each hashing thread as it starts: on Linux, a thread id given to setpriority
    changes that thread alone. Where that is refused or unknown, the thread keeps its priority."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


def _hashing_executor() -> ThreadPoolExecutor:
    # Threads start on first use only, so the CLI's one hash costs one thread.
    return ThreadPoolExecutor(
        max_workers=hashing_threads(),
        thread_name_prefix="authserver-argon2",
        initializer=_lower_priority,
    )


COST_SAMPLES = 63  # verifications at today's parameters the wait is the median of


@dataclass(frozen=True)
class CostOfToday:
    """How long a verification at today's parameters takes on this machine, now: the median of
    the latest ones (unknown users and up-to-date hashes alike), seeded with the time it took to
    make the dummy hash. Appended to from argon2's threads (deque.append is atomic)."""

    samples: deque[float] = field(default_factory=lambda: deque(maxlen=COST_SAMPLES))

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def median(self) -> float:
        return statistics.median(list(self.samples)) if self.samples else 0.0


@dataclass(frozen=True)
class Checked:
    """What a verification found, and how long argon2 took over it."""

    ok: bool
    seconds: float
    at_todays_parameters: bool


@dataclass(frozen=True)
class Passwords:
    hasher: PasswordHasher
    dummy_hash: str = field(repr=False)
    cost_of_today: CostOfToday = field(default_factory=CostOfToday)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # a seam for the tests
    executor: ThreadPoolExecutor = field(
        default_factory=_hashing_executor, repr=False, compare=False
    )

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches. A None hash (unknown user) costs a dummy verification at
        today's parameters; a failed check of a hash at other parameters, or of a malformed
        one, lasts at least what one at today's parameters does (see the module docstring)."""
        loop = asyncio.get_running_loop()
        checked = await loop.run_in_executor(self.executor, self._verify, password_hash, password)
        if not checked.ok and not checked.at_todays_parameters:
            remaining = self.cost_of_today.median() - checked.seconds
            if remaining > 0:
                await self.sleep(remaining)
        return checked.ok

    def _verify(self, password_hash: str | None, password: str) -> Checked:
        current = password_hash is None or self.at_todays_parameters(password_hash)
        started = time.perf_counter()
        try:
            ok: bool = self.hasher.verify(password_hash or self.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
        seconds = time.perf_counter() - started
        if current:
            self.cost_of_today.add(seconds)
        return Checked(ok and password_hash is not None, seconds, current)

    def at_todays_parameters(self, password_hash: str) -> bool:
        """False for a hash made with other parameters, and for one that is not an argon2 hash
        at all."""
        try:
            return not self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False


def make_passwords(settings: Settings) -> Passwords:
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )
    started = time.perf_counter()
    dummy_hash = hasher.hash("authserver dummy password for unknown users")
    cost_of_today = CostOfToday()
    cost_of_today.add(time.perf_counter() - started)  # making a hash costs what verifying does
    return Passwords(hasher, dummy_hash, cost_of_today)


def check_new_password(password: str) -> str | None:
    """Why a password may not be set, or None if it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    return None
