"""Password hashes run on the hashing executor's own threads, at a lower priority (issue 13,
item 5): never on the event loop, and never in asyncio's default executor, where the key
ring's builds and the KEK file's reads go."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Literal

import pytest
from argon2 import PasswordHasher

from authserver.login.passwords import HASHING_NICE, hashing_threads, make_passwords
from authserver.settings import Settings

CHEAP = Settings(argon2_time_cost=1, argon2_memory_cost=1024)


class RecordingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.seen: list[tuple[str, int]] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        thread = threading.current_thread()
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        self.seen.append((thread.name, nice))
        return super().verify(hash, password)


async def test_hashes_run_on_the_hashing_threads_at_a_lower_priority() -> None:
    passwords = make_passwords(CHEAP)
    recording = RecordingHasher()
    passwords = type(passwords)(recording, recording.hash("correct horse battery"))
    assert await passwords.verify(passwords.dummy_hash, "correct horse battery")
    [(name, nice)] = recording.seen
    assert name.startswith("authserver-argon2")
    assert name != threading.current_thread().name
    if sys.platform == "linux":
        loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert nice == min(19, loop_nice + HASHING_NICE)


async def test_a_burst_of_hashes_does_not_hold_up_the_default_executor() -> None:
    passwords = make_passwords(CHEAP)
    hashes = [passwords.hash(f"password number {i}") for i in range(4 * hashing_threads() + 4)]
    burst = asyncio.gather(*hashes)
    # asyncio.to_thread work (the key ring's builds) starts while the burst is still queued.
    marker = await asyncio.wait_for(asyncio.to_thread(lambda: "ran"), timeout=30)
    assert marker == "ran"
    assert len(set(await burst)) == len(hashes)


def test_at_least_one_hashing_thread() -> None:
    assert hashing_threads() >= 1


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
def test_the_event_loop_thread_keeps_its_priority() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    passwords = make_passwords(CHEAP)
    asyncio.run(passwords.verify(None, "whatever password"))
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
