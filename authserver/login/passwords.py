"""Argon2id password hashing, off the event loop.

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
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authserver.settings import Settings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
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

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches. A None hash (unknown user) costs a dummy verification at
        today's parameters; a failed check of a hash at other parameters, or of a malformed
        one, lasts at least what one at today's parameters does (see the module docstring)."""
        checked = await asyncio.to_thread(self._verify, password_hash, password)
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
