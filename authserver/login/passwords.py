"""Argon2id password hashing, off the event loop, on threads of its own.

An unknown username is verified against a dummy hash made with the same parameters, so a miss
costs the same time as a wrong password (SPEC: indistinguishable in body and timing).

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
import threading
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


@dataclass(frozen=True)
class Passwords:
    hasher: PasswordHasher
    dummy_hash: str = field(repr=False)
    executor: ThreadPoolExecutor = field(
        default_factory=_hashing_executor, repr=False, compare=False
    )

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches; a None hash (unknown user) costs a dummy verification."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            ok = self.hasher.verify(password_hash or self.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and password_hash is not None

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
    return Passwords(hasher, hasher.hash("authserver dummy password for unknown users"))


def check_new_password(password: str) -> str | None:
    """Why a password may not be set, or None if it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    return None
